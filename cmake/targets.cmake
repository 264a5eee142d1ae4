# Halide target lists (docs/design.md, "Targets"). x86 libraries are multi-target, most specific
# target first. Halide's own wrapper caches its choice for the life of the process, so the
# runtime calls each target's entry point (<lib>-<target>-no_runtime) itself: it picks the
# best one the CPU supports, or the one forced with halibit::force_isa (runtime/src/dispatch.cpp).
# The plain x86-64 target is the `scalar` one (the generators give it the naive schedule).
set(HALIBIT_TARGET_AVX512 "x86-64-linux-sse41-avx-f16c-fma-avx2-avx512-avx512_skylake-avx512_cannonlake-avx512_sapphirerapids")
# Halide 14 compiles avx512_sapphirerapids with LLVM's sapphirerapids CPU, which may emit
# AVX512-FP16 (absent on AMD Zen 4); tests/check_codegen.cmake fails any kernel that does. Kernels
# that need neither vpopcntd nor VNNI use the cannonlake tier, which every AVX-512 CPU we
# target has.
set(HALIBIT_TARGET_AVX512_BASE "x86-64-linux-sse41-avx-f16c-fma-avx2-avx512-avx512_skylake-avx512_cannonlake")
set(HALIBIT_TARGET_AVX2 "x86-64-linux-sse41-avx-f16c-fma-avx2")
set(HALIBIT_TARGET_SCALAR "x86-64-linux")
set(HALIBIT_TARGET_ARM64 "arm-64-linux")
set(HALIBIT_TARGET_ARM64_DOTPROD "arm-64-linux-arm_dot_prod")  # conv_u8 only (sdot), chosen at run time

# The ISA name each target stands for.
function(halibit_isa_of TARGET_STRING OUTVAR)
    if (TARGET_STRING MATCHES "avx512")
        set(${OUTVAR} avx512 PARENT_SCOPE)
    elseif (TARGET_STRING MATCHES "avx2")
        set(${OUTVAR} avx2 PARENT_SCOPE)
    elseif (TARGET_STRING MATCHES "^arm.*arm_dot_prod")
        set(${OUTVAR} arm64_dotprod PARENT_SCOPE)
    elseif (TARGET_STRING MATCHES "^arm")
        set(${OUTVAR} arm64 PARENT_SCOPE)
    else ()
        set(${OUTVAR} scalar PARENT_SCOPE)
    endif ()
endfunction()

if (CMAKE_SYSTEM_PROCESSOR MATCHES "aarch64|arm64")
    set(HALIBIT_TARGETS "${HALIBIT_TARGET_ARM64}")
    set(HALIBIT_ISAS arm64 arm64_dotprod)
else ()
    set(HALIBIT_TARGETS "${HALIBIT_TARGET_AVX512}" "${HALIBIT_TARGET_AVX2}" "${HALIBIT_TARGET_SCALAR}")
    set(HALIBIT_ISAS avx512 avx2 scalar)
endif ()

# halibit_add_kernel(<library> GENERATOR <gen> [AVX512_BASE] [ARM_DOT_PROD] [PARAMS k=v ...])
# ARM_DOT_PROD: arm64 builds add the dot-product target (most specific first).
# One static library per kernel variant, all sharing the runtime of the first.
function(halibit_add_kernel LIB)
    cmake_parse_arguments(ARG "AVX512_BASE;ARM_DOT_PROD" "GENERATOR;AUTOSCHEDULER" "PARAMS" ${ARGN})
    get_property(runtime GLOBAL PROPERTY HALIBIT_HALIDE_RUNTIME)
    set(runtime_args "")
    if (runtime)
        set(runtime_args USE_RUNTIME ${runtime})
    endif ()
    set(targets ${HALIBIT_TARGETS})
    if (ARG_AVX512_BASE)
        list(TRANSFORM targets REPLACE "^${HALIBIT_TARGET_AVX512}$" "${HALIBIT_TARGET_AVX512_BASE}")
    endif ()
    if (ARG_ARM_DOT_PROD AND targets STREQUAL "${HALIBIT_TARGET_ARM64}")
        set(targets "${HALIBIT_TARGET_ARM64_DOTPROD}" "${HALIBIT_TARGET_ARM64}")
    endif ()
    set(extra "")
    if (ARG_AUTOSCHEDULER)
        # The autoscheduler baseline is built for this machine's best x86 target only.
        set(targets "${HALIBIT_TARGET_AVX512}" "${HALIBIT_TARGET_AVX2}")
        set(extra AUTOSCHEDULER ${ARG_AUTOSCHEDULER})
    endif ()
    add_halide_library(${LIB} FROM halibit::halide_generators::halibit_${ARG_GENERATOR}_generator
                       GENERATOR ${ARG_GENERATOR}
                       FUNCTION_NAME ${LIB}
                       TARGETS ${targets}
                       PARAMS ${ARG_PARAMS}
                       ${extra}
                       ${runtime_args}
                       STMT ${LIB}.stmt ASSEMBLY ${LIB}.s)
    list(LENGTH targets n_targets)
    if (n_targets GREATER 1)
        # A multi-target library writes one .s and .stmt per target (<lib>-<target>.s), not the
        # declared <lib>.s and <lib>.stmt; without these two files every build regenerated
        # every kernel.
        add_custom_command(OUTPUT ${CMAKE_CURRENT_BINARY_DIR}/${LIB}.s APPEND
                           COMMAND ${CMAKE_COMMAND} -E touch ${CMAKE_CURRENT_BINARY_DIR}/${LIB}.s
                                   ${CMAKE_CURRENT_BINARY_DIR}/${LIB}.stmt)
    endif ()
    if (NOT runtime)
        set_property(GLOBAL PROPERTY HALIBIT_HALIDE_RUNTIME ${LIB}.runtime)
    endif ()
    set_property(GLOBAL APPEND PROPERTY HALIBIT_KERNELS ${LIB})
    # One line per (kernel, isa) for the runtime's dispatch table: the target's entry point, of
    # the signature the library's header declares.
    foreach (t IN LISTS targets)
        halibit_isa_of("${t}" isa)
        if (n_targets EQUAL 1)
            set(symbol "${LIB}")
        else ()
            set(symbol "${LIB}-${t}-no_runtime")
        endif ()
        set_property(GLOBAL APPEND_STRING PROPERTY HALIBIT_KERNEL_TABLE "HALIBIT_KERNEL(${LIB}, ${isa}, \"${symbol}\")\n")
    endforeach ()
endfunction()
