#!/usr/bin/env bash
# Writes the lookup16 bitcode sources (one per target tier). Run from this directory after a
# change; the .ll files are committed.
set -euo pipefail
scalar_fn='; Lane semantics (every file): byte idx of the 16-byte little-endian table w0, w1, w2, w3.
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
'
x86_head='target datalayout = "e-m:e-p270:32:32-p271:32:32-p272:64:64-i64:64-f80:128-n8:16:32:64-S128"
target triple = "x86_64-unknown-linux-gnu"
'
# vec_fn LANES INTRINSIC TABLE_TYPE_BYTES: the table in every 16-byte lane, one shuffle.
vec_fn() {
    local n=$1 intr=$2 tbl_n=$3
    echo "define weak_odr <$n x i8> @halibit_lookup16x$n(<$n x i8> %idx, <$n x i32> %v0, <$n x i32> %v1, <$n x i32> %v2, <$n x i32> %v3) nounwind readnone alwaysinline {"
    local prev=undef
    for k in 0 1 2 3; do
        echo "  %w$k = extractelement <$n x i32> %v$k, i32 0"
        echo "  %t$k = insertelement <4 x i32> $prev, i32 %w$k, i32 $k"
        prev=%t$k
    done
    echo "  %t16 = bitcast <4 x i32> $prev to <16 x i8>"
    local mask="" m
    for ((m = 0; m < tbl_n; m++)); do mask+="${mask:+, }i32 $((m % 16))"; done
    echo "  %t = shufflevector <16 x i8> %t16, <16 x i8> undef, <$tbl_n x i32> <$mask>"
    echo "  %r = call <$n x i8> @$intr(<$tbl_n x i8> %t, <$n x i8> %idx)"
    echo "  ret <$n x i8> %r"
    echo "}"
    echo "declare <$n x i8> @llvm.uadd.sat.v${n}i8(<$n x i8>, <$n x i8>)"
    echo "define weak_odr <$n x i8> @halibit_lookup16_addx$n(<$n x i8> %acc, <$n x i8> %idx, <$n x i32> %v0, <$n x i32> %v1, <$n x i32> %v2, <$n x i32> %v3) nounwind readnone alwaysinline {"
    echo "  %l = call <$n x i8> @halibit_lookup16x$n(<$n x i8> %idx, <$n x i32> %v0, <$n x i32> %v1, <$n x i32> %v2, <$n x i32> %v3)"
    echo "  %r = call <$n x i8> @llvm.uadd.sat.v${n}i8(<$n x i8> %acc, <$n x i8> %l)"
    echo "  ret <$n x i8> %r"
    echo "}"
    local words=$((n / 4))
    echo "define weak_odr <$n x i8> @halibit_lookup16_or_addx$n(<$n x i8> %acc, <$n x i8> %w, <$n x i32> %va, <$n x i32> %v0, <$n x i32> %v1, <$n x i32> %v2, <$n x i32> %v3) nounwind readnone alwaysinline {"
    echo "  %a = extractelement <$n x i32> %va, i32 0"
    echo "  %a1 = insertelement <$words x i32> undef, i32 %a, i32 0"
    echo "  %aw = shufflevector <$words x i32> %a1, <$words x i32> undef, <$words x i32> zeroinitializer"
    echo "  %ab = bitcast <$words x i32> %aw to <$n x i8>"
    echo "  %idx = or <$n x i8> %w, %ab"
    echo "  %r = call <$n x i8> @halibit_lookup16_addx$n(<$n x i8> %acc, <$n x i8> %idx, <$n x i32> %v0, <$n x i32> %v1, <$n x i32> %v2, <$n x i32> %v3)"
    echo "  ret <$n x i8> %r"
    echo "}"
}
{ echo "; halibit_lookup16 for the plain x86-64 (scalar) target: no vector version."; echo "$x86_head"; echo "$scalar_fn"; } > scalar.ll
{
    echo "; halibit_lookup16 for AVX2: vpshufb on xmm and ymm (the table in every 128-bit lane)."
    echo "$x86_head"; echo "$scalar_fn"
    echo "declare <16 x i8> @llvm.x86.ssse3.pshuf.b.128(<16 x i8>, <16 x i8>)"
    echo "declare <32 x i8> @llvm.x86.avx2.pshuf.b(<32 x i8>, <32 x i8>)"
    vec_fn 16 llvm.x86.ssse3.pshuf.b.128 16
    vec_fn 32 llvm.x86.avx2.pshuf.b 32
} > avx2.ll
{
    echo "; halibit_lookup16 for AVX-512: vpshufb on xmm, ymm and zmm (the table in every 128-bit lane)."
    echo "$x86_head"; echo "$scalar_fn"
    echo "declare <16 x i8> @llvm.x86.ssse3.pshuf.b.128(<16 x i8>, <16 x i8>)"
    echo "declare <32 x i8> @llvm.x86.avx2.pshuf.b(<32 x i8>, <32 x i8>)"
    echo "declare <64 x i8> @llvm.x86.avx512.pshuf.b.512(<64 x i8>, <64 x i8>)"
    vec_fn 16 llvm.x86.ssse3.pshuf.b.128 16
    vec_fn 32 llvm.x86.avx2.pshuf.b 32
    vec_fn 64 llvm.x86.avx512.pshuf.b.512 64
} > avx512.ll
{
    echo "; halibit_lookup16 for arm64: tbl with the table in one q register."
    echo 'target datalayout = "e-m:e-i8:8:32-i16:16:32-i64:64-i128:128-n32:64-S128"'
    echo 'target triple = "aarch64-unknown-linux-gnu"'
    echo; echo "$scalar_fn"
    echo "declare <16 x i8> @llvm.aarch64.neon.tbl1.v16i8(<16 x i8>, <16 x i8>)"
    echo "declare <8 x i8> @llvm.aarch64.neon.tbl1.v8i8(<16 x i8>, <8 x i8>)"
    vec_fn 16 llvm.aarch64.neon.tbl1.v16i8 16
    vec_fn 8 llvm.aarch64.neon.tbl1.v8i8 16
} > arm64.ll
