; halibit_lookup16 for arm64: tbl with the table in one q register.
target datalayout = "e-m:e-i8:8:32-i16:16:32-i64:64-i128:128-n32:64-S128"
target triple = "aarch64-unknown-linux-gnu"

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

declare <16 x i8> @llvm.aarch64.neon.tbl1.v16i8(<16 x i8>, <16 x i8>)
declare <8 x i8> @llvm.aarch64.neon.tbl1.v8i8(<16 x i8>, <8 x i8>)
define weak_odr <16 x i8> @halibit_lookup16x16(<16 x i8> %idx, <16 x i32> %v0, <16 x i32> %v1, <16 x i32> %v2, <16 x i32> %v3) nounwind readnone alwaysinline {
  %w0 = extractelement <16 x i32> %v0, i32 0
  %t0 = insertelement <4 x i32> undef, i32 %w0, i32 0
  %w1 = extractelement <16 x i32> %v1, i32 0
  %t1 = insertelement <4 x i32> %t0, i32 %w1, i32 1
  %w2 = extractelement <16 x i32> %v2, i32 0
  %t2 = insertelement <4 x i32> %t1, i32 %w2, i32 2
  %w3 = extractelement <16 x i32> %v3, i32 0
  %t3 = insertelement <4 x i32> %t2, i32 %w3, i32 3
  %t16 = bitcast <4 x i32> %t3 to <16 x i8>
  %t = shufflevector <16 x i8> %t16, <16 x i8> undef, <16 x i32> <i32 0, i32 1, i32 2, i32 3, i32 4, i32 5, i32 6, i32 7, i32 8, i32 9, i32 10, i32 11, i32 12, i32 13, i32 14, i32 15>
  %r = call <16 x i8> @llvm.aarch64.neon.tbl1.v16i8(<16 x i8> %t, <16 x i8> %idx)
  ret <16 x i8> %r
}
declare <16 x i8> @llvm.uadd.sat.v16i8(<16 x i8>, <16 x i8>)
define weak_odr <16 x i8> @halibit_lookup16_addx16(<16 x i8> %acc, <16 x i8> %idx, <16 x i32> %v0, <16 x i32> %v1, <16 x i32> %v2, <16 x i32> %v3) nounwind readnone alwaysinline {
  %l = call <16 x i8> @halibit_lookup16x16(<16 x i8> %idx, <16 x i32> %v0, <16 x i32> %v1, <16 x i32> %v2, <16 x i32> %v3)
  %r = call <16 x i8> @llvm.uadd.sat.v16i8(<16 x i8> %acc, <16 x i8> %l)
  ret <16 x i8> %r
}
define weak_odr <16 x i8> @halibit_lookup16_or_addx16(<16 x i8> %acc, <16 x i8> %w, <16 x i32> %va, <16 x i32> %v0, <16 x i32> %v1, <16 x i32> %v2, <16 x i32> %v3) nounwind readnone alwaysinline {
  %a = extractelement <16 x i32> %va, i32 0
  %a1 = insertelement <4 x i32> undef, i32 %a, i32 0
  %aw = shufflevector <4 x i32> %a1, <4 x i32> undef, <4 x i32> zeroinitializer
  %ab = bitcast <4 x i32> %aw to <16 x i8>
  %idx = or <16 x i8> %w, %ab
  %r = call <16 x i8> @halibit_lookup16_addx16(<16 x i8> %acc, <16 x i8> %idx, <16 x i32> %v0, <16 x i32> %v1, <16 x i32> %v2, <16 x i32> %v3)
  ret <16 x i8> %r
}
define weak_odr <8 x i8> @halibit_lookup16x8(<8 x i8> %idx, <8 x i32> %v0, <8 x i32> %v1, <8 x i32> %v2, <8 x i32> %v3) nounwind readnone alwaysinline {
  %w0 = extractelement <8 x i32> %v0, i32 0
  %t0 = insertelement <4 x i32> undef, i32 %w0, i32 0
  %w1 = extractelement <8 x i32> %v1, i32 0
  %t1 = insertelement <4 x i32> %t0, i32 %w1, i32 1
  %w2 = extractelement <8 x i32> %v2, i32 0
  %t2 = insertelement <4 x i32> %t1, i32 %w2, i32 2
  %w3 = extractelement <8 x i32> %v3, i32 0
  %t3 = insertelement <4 x i32> %t2, i32 %w3, i32 3
  %t16 = bitcast <4 x i32> %t3 to <16 x i8>
  %t = shufflevector <16 x i8> %t16, <16 x i8> undef, <16 x i32> <i32 0, i32 1, i32 2, i32 3, i32 4, i32 5, i32 6, i32 7, i32 8, i32 9, i32 10, i32 11, i32 12, i32 13, i32 14, i32 15>
  %r = call <8 x i8> @llvm.aarch64.neon.tbl1.v8i8(<16 x i8> %t, <8 x i8> %idx)
  ret <8 x i8> %r
}
declare <8 x i8> @llvm.uadd.sat.v8i8(<8 x i8>, <8 x i8>)
define weak_odr <8 x i8> @halibit_lookup16_addx8(<8 x i8> %acc, <8 x i8> %idx, <8 x i32> %v0, <8 x i32> %v1, <8 x i32> %v2, <8 x i32> %v3) nounwind readnone alwaysinline {
  %l = call <8 x i8> @halibit_lookup16x8(<8 x i8> %idx, <8 x i32> %v0, <8 x i32> %v1, <8 x i32> %v2, <8 x i32> %v3)
  %r = call <8 x i8> @llvm.uadd.sat.v8i8(<8 x i8> %acc, <8 x i8> %l)
  ret <8 x i8> %r
}
define weak_odr <8 x i8> @halibit_lookup16_or_addx8(<8 x i8> %acc, <8 x i8> %w, <8 x i32> %va, <8 x i32> %v0, <8 x i32> %v1, <8 x i32> %v2, <8 x i32> %v3) nounwind readnone alwaysinline {
  %a = extractelement <8 x i32> %va, i32 0
  %a1 = insertelement <2 x i32> undef, i32 %a, i32 0
  %aw = shufflevector <2 x i32> %a1, <2 x i32> undef, <2 x i32> zeroinitializer
  %ab = bitcast <2 x i32> %aw to <8 x i8>
  %idx = or <8 x i8> %w, %ab
  %r = call <8 x i8> @halibit_lookup16_addx8(<8 x i8> %acc, <8 x i8> %idx, <8 x i32> %v0, <8 x i32> %v1, <8 x i32> %v2, <8 x i32> %v3)
  ret <8 x i8> %r
}
