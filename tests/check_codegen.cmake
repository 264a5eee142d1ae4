# Greps the generated assembly for the instructions each tuned schedule relies on, so that a
# schedule cannot silently fall back to slow code. Run by ctest (label codegen) with -DDIR=.
if (ARCH STREQUAL "arm64")
    set(checks
        # library                    target substring   instruction
        "halibit_bitserial_conv_int32|.s|cnt"
        "halibit_bconv_int32|.s|cnt"
        "halibit_conv_u8_int32|arm-64-linux-no_runtime|smull"
        "halibit_conv_u8_codes|arm-64-linux-no_runtime|smull"
        "halibit_conv_u8_int32|arm_dot_prod|sdot"
        "halibit_conv_u8_codes|arm_dot_prod|sdot"
        "halibit_lut_pairwise_int32|.s|tbl"
        "halibit_lut_activation_table_int32|.s|tbl"
        "halibit_table_conv_w1_codes|.s|tbl"
        "halibit_table_conv_w2_codes|.s|tbl")
else ()
    set(checks
        "halibit_bitserial_conv_int32|avx512_sapphirerapids|vpopcntq"
        "halibit_bconv_int32|avx512_sapphirerapids|vpopcntq"
        "halibit_bitserial_conv_int32|fma-avx2-no_runtime|vpshufb"
        "halibit_bconv_int32|fma-avx2-no_runtime|vpshufb"
        "halibit_conv_u8_int32|avx512_sapphirerapids|vpdpbusd"
        "halibit_conv_u8_codes|avx512_sapphirerapids|vpdpbusd"
        "halibit_conv_u8_int32|fma-avx2-no_runtime|vpmaddwd"
        "halibit_conv_u8_codes|fma-avx2-no_runtime|vpmaddwd"
        "halibit_conv_u8_narrow_codes|fma-avx2-no_runtime|vpmaddubsw"
        "halibit_lut_pairwise_int32|avx512_cannonlake|vpshufb"
        "halibit_lut_activation_table_int32|avx512_cannonlake|vpshufb"
        "halibit_lut_pairwise_int32|fma-avx2-no_runtime|vpshufb"
        "halibit_lut_activation_table_int32|fma-avx2-no_runtime|vpshufb"
        # The pairwise kernel: each code broadcast by one load (lookup16_or_add) and the
        # products summed in bytes.
        "halibit_lut_pairwise_codes|fma-avx2-no_runtime|vpbroadcastd"
        "halibit_lut_pairwise_codes|fma-avx2-no_runtime|vpaddusb"
        "halibit_lut_pairwise_codes|avx512_cannonlake|vpaddusb"
        # The table kernels: vpshufb on ymm (AVX2) and zmm (AVX-512), the table broadcast once
        # per step and pixel, and the byte sums as saturating adds (lookup16_add).
        "halibit_table_conv_w1_codes|fma-avx2-no_runtime|vpshufb"
        "halibit_table_conv_w2_codes|fma-avx2-no_runtime|vpshufb"
        "halibit_table_conv_w2_codes|fma-avx2-no_runtime|vbroadcasti128"
        "halibit_table_conv_w2_codes|fma-avx2-no_runtime|vpaddusb"
        "halibit_table_conv_w2_codes|avx512_cannonlake|vpshufb"
        "halibit_table_conv_w2_codes|avx512_cannonlake|vbroadcasti32x4"
        "halibit_table_conv_w2_codes|avx512_cannonlake|vpaddusb")
endif ()
set(failed "")
foreach (check IN LISTS checks)
    string(REPLACE "|" ";" parts "${check}")
    list(GET parts 0 lib)
    list(GET parts 1 target)
    list(GET parts 2 insn)
    file(GLOB asm "${DIR}/${lib}*${target}")
    if (NOT target STREQUAL ".s")
        file(GLOB asm "${DIR}/${lib}-*${target}*.s")
    endif ()
    if (NOT asm)
        list(APPEND failed "${lib} (${target}): no assembly output found")
        continue()
    endif ()
    file(STRINGS "${asm}" hits REGEX "\t${insn}\t")
    list(LENGTH hits count)
    message(STATUS "${lib} ${target}: ${count} x ${insn}")
    if (count EQUAL 0)
        list(APPEND failed "${lib} (${target}): no ${insn}")
    endif ()
endforeach ()
# No AVX512-FP16 (vmovw, v*ph, v*sh; F16C's vcvtph2ps/vcvtps2ph are fine) in any avx512 kernel.
file(GLOB avx512_asm "${DIR}/*avx512*.s")
foreach (asm IN LISTS avx512_asm)
    file(STRINGS "${asm}" fp16 REGEX "^\t(vmovw|v[a-z0-9]+(ph|sh))\t")
    list(FILTER fp16 EXCLUDE REGEX "vcvtph2ps|vcvtps2ph")
    if (fp16)
        list(GET fp16 0 first)
        get_filename_component(name "${asm}" NAME)
        list(APPEND failed "${name}: AVX512-FP16 instruction ${first}")
    endif ()
endforeach ()
if (failed)
    message(FATAL_ERROR "codegen check failed: ${failed}")
endif ()
message(STATUS "1 passed, 0 failed")
