; halibit_lookup16 for the plain x86-64 (scalar) target: no vector version.
target datalayout = "e-m:e-p270:32:32-p271:32:32-p272:64:64-i64:64-f80:128-n8:16:32:64-S128"
target triple = "x86_64-unknown-linux-gnu"

; Lane semantics (every file): byte idx of the 16-byte little-endian table w0, w1, w2, w3.
; idx must be below 16 (the vector versions do not mask it).
define weak_odr i8 @halibit_lookup16(i8 %idx, i32 %w0, i32 %w1, i32 %w2, i32 %w3) nounwind readnone alwaysinline {
  %i = and i8 %idx, 15
  %q = lshr i8 %i, 2
  %ishi = icmp uge i8 %q, 2
  %lo = select i1 %ishi, i32 %w2, i32 %w0
  %hi = select i1 %ishi, i32 %w3, i32 %w1
  %odd = and i8 %q, 1
  %isodd = icmp eq i8 %odd, 1
  %word = select i1 %isodd, i32 %hi, i32 %lo
  %k = and i8 %i, 3
  %k32 = zext i8 %k to i32
  %sh = shl i32 %k32, 3
  %w = lshr i32 %word, %sh
  %r = trunc i32 %w to i8
  ret i8 %r
}

; halibit_lookup16_add: acc + the lookup, saturating (so that LLVM does not reassociate a chain
; of them; a kernel keeps its sums below 256). A function of its own because Halide 14 splits a
; 64-lane saturating add into two 32-lane ones.
declare i8 @llvm.uadd.sat.i8(i8, i8)
define weak_odr i8 @halibit_lookup16_add(i8 %acc, i8 %idx, i32 %w0, i32 %w1, i32 %w2, i32 %w3) nounwind readnone alwaysinline {
  %v = call i8 @halibit_lookup16(i8 %idx, i32 %w0, i32 %w1, i32 %w2, i32 %w3)
  %r = call i8 @llvm.uadd.sat.i8(i8 %acc, i8 %v)
  ret i8 %r
}

; halibit_lookup16_or_add: acc + the lookup at w | a, saturating, where a32 holds the byte a in
; each of its four bytes (so that a vector version broadcasts it with one load: vpbroadcastd).
define weak_odr i8 @halibit_lookup16_or_add(i8 %acc, i8 %w, i32 %a32, i32 %w0, i32 %w1, i32 %w2, i32 %w3) nounwind readnone alwaysinline {
  %a = trunc i32 %a32 to i8
  %idx = or i8 %w, %a
  %r = call i8 @halibit_lookup16_add(i8 %acc, i8 %idx, i32 %w0, i32 %w1, i32 %w2, i32 %w3)
  ret i8 %r
}

