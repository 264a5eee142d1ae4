# Cross build for ARMv8 (Debian's aarch64 cross compiler); tests run under qemu-aarch64.
# Used by scripts/build.sh as the second CMake stage: generators come from the host build
# (-Dhalibit-halide_generators_ROOT=<host build>) and Halide's helpers from the x86 package
# (-DHalideHelpers_DIR=/usr/lib/x86_64-linux-gnu/cmake/HalideHelpers14).
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)
set(CMAKE_C_COMPILER aarch64-linux-gnu-gcc)
set(CMAKE_CXX_COMPILER aarch64-linux-gnu-g++)
set(CMAKE_FIND_ROOT_PATH /usr/aarch64-linux-gnu)
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE BOTH)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE BOTH)
set(CMAKE_CROSSCOMPILING_EMULATOR qemu-aarch64 -L /usr/aarch64-linux-gnu)
