# The `halibit` command line: exit codes and messages of its error paths, and one run that must
# reproduce the golden logits byte for byte.
#   cmake -DHALIBIT=<halibit binary> -DGOLDEN=<dir: model.halibit input.npy logits.npy>
#         -DSAMPLES=<dir of sample JPEGs> -DWORK=<scratch dir> -P test_cli.cmake
foreach (var HALIBIT GOLDEN SAMPLES WORK)
    if (NOT DEFINED ${var})
        message(FATAL_ERROR "test_cli.cmake: -D${var}=... is required")
    endif ()
endforeach ()
file(REMOVE_RECURSE ${WORK})
file(MAKE_DIRECTORY ${WORK})
set(model ${GOLDEN}/model.halibit)
set(input ${GOLDEN}/input.npy)
set(logits ${GOLDEN}/logits.npy)
set(failures 0)
set(count 0)

# check(<name> <exit code> <stderr regex> <stdout regex> args...): an empty regex means "empty".
# Every failure (exit code != 0) must be exactly one line "halibit: ...".
function(check name code err_regex out_regex)
    math(EXPR n "${count} + 1")
    set(count ${n} PARENT_SCOPE)
    execute_process(COMMAND ${HALIBIT} ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err
                    WORKING_DIRECTORY ${WORK})
    set(problems "")
    if (NOT rc STREQUAL code)
        string(APPEND problems "  exit code ${rc}, expected ${code}\n")
    endif ()
    if (err_regex STREQUAL "")
        if (NOT err STREQUAL "")
            string(APPEND problems "  stderr should be empty\n")
        endif ()
    elseif (NOT err MATCHES "${err_regex}")
        string(APPEND problems "  stderr does not match '${err_regex}'\n")
    endif ()
    if (NOT code STREQUAL "0" AND NOT err MATCHES "^halibit: [^\n]+\n$")
        string(APPEND problems "  stderr is not one line 'halibit: <message>'\n")
    endif ()
    if (NOT out_regex STREQUAL "" AND NOT out MATCHES "${out_regex}")
        string(APPEND problems "  stdout does not match '${out_regex}'\n")
    endif ()
    if (problems)
        math(EXPR f "${failures} + 1")
        set(failures ${f} PARENT_SCOPE)
        string(REPLACE ";" " " cmd "${ARGN}")
        message("FAIL ${name}: halibit ${cmd}\n${problems}  stdout: ${out}\n  stderr: ${err}")
    else ()
        message("ok   ${name}")
    endif ()
endfunction()

# Success paths.
check(version 0 "" "^halibit [0-9]+\\.[0-9]+\\.[0-9]+\n$" --version)
check(help 0 "" "Subcommands:" --help)
check(info 0 "" "GMACs/image: [0-9.]+\n" info ${model})
check(run_golden 0 "" "^image 0: class [0-9]+" run ${model} --input ${input} --output ${WORK}/out.npy)
execute_process(COMMAND ${CMAKE_COMMAND} -E compare_files ${WORK}/out.npy ${logits} RESULT_VARIABLE differ)
math(EXPR count "${count} + 1")
if (differ)
    math(EXPR failures "${failures} + 1")
    message("FAIL run_golden_logits: ${WORK}/out.npy differs from ${logits}")
else ()
    message("ok   run_golden_logits")
endif ()
check(run_scalar_u8_batch1 0 "" "^image 0:" run ${model} -i ${input} -o ${WORK}/out_u8.npy --isa scalar --kernels u8
      --batch 1)
# A forced choice that a layer cannot take says so: the stem reads the 8-bit image with its pad
# value, the fc 8-bit codes with 8-bit weights.
check(run_forced_bitserial_notes 0
      "^halibit: note: --kernels bitserial: layer 'conv1' runs conv_u8: its input is padded with non-zero codes\nhalibit: note: --kernels bitserial: layer 'fc' runs conv_u8: its w8 weights are wider than 4 bits\n$"
      "^image 0:" run ${model} -i ${input} -o ${WORK}/out_bitserial.npy --kernels bitserial)
check(bench_json 0 "" "latency:  median [0-9.]+ ms" bench ${model} --repeat 2 --warmup 0 --json ${WORK}/bench.json)
math(EXPR count "${count} + 1")
file(READ ${WORK}/bench.json json)
string(JSON median ERROR_VARIABLE json_error GET "${json}" latency_ms median)
string(JSON layers ERROR_VARIABLE layers_error LENGTH "${json}" layers)
string(JSON kernel ERROR_VARIABLE kernel_error GET "${json}" layers 0 kernel)
if (json_error OR layers_error OR kernel_error OR NOT layers GREATER 0)
    math(EXPR failures "${failures} + 1")
    message("FAIL bench_json_content: ${json_error} ${layers_error} ${kernel_error}\n${json}")
else ()
    message("ok   bench_json_content (median ${median} ms, ${layers} layers, first kernel '${kernel}')")
endif ()

set(data /usr/share/datasets/fashion-mnist)
check(eval_limit 0 "" "top-1    [0-9.]+% \\([0-9]+ / 100\\).*confusion matrix.*recall" eval ${model} --data ${data}
      --limit 100 --predictions ${WORK}/pred.npy)
check(classify_sample 0 "" "0000-ankle-boot.jpg \\(28x28 gray, [0-9.]+ ms\\)\n +[0-9.]+%  [^\n]+\n +[0-9.]+%"
      classify ${model} ${SAMPLES}/0000-ankle-boot.jpg --top 2)

# Usage errors: exit code 2.
check(no_command 2 "^halibit: a command is required \\(info, run, bench, eval or classify\\)" "")
check(unknown_command 2 "^halibit: unknown command 'frob'" "" frob)
check(unknown_option 2 "^halibit: .*--frob" "" info ${model} --frob)
check(info_without_model 2 "^halibit: model is required; see halibit info --help" "" info)
check(run_without_output 2 "^halibit: --output is required" "" run ${model} --input ${input})
check(bad_isa 2 "^halibit: --isa: unknown isa 'sse9' \\(expected auto, avx512, avx2, scalar, arm64 or arm64_dotprod\\)" ""
      run ${model} -i ${input} -o ${WORK}/x.npy --isa sse9)
check(bad_kernels 2 "^halibit: --kernels: unknown kernel choice 'fast'" "" bench ${model} --kernels fast)
check(zero_threads 2 "^halibit: --threads: " "" bench ${model} --threads 0)
check(zero_repeat 2 "^halibit: --repeat: " "" bench ${model} --repeat 0)

# Runtime errors: exit code 1, the message names the file.
check(missing_model 1 "^halibit: ${WORK}/missing.halibit: " "" info ${WORK}/missing.halibit)
check(model_is_not_a_model 1 "^halibit: ${input}: " "" info ${input})
check(missing_input 1 "^halibit: ${WORK}/missing.npy: cannot open" ""
      run ${model} -i ${WORK}/missing.npy -o ${WORK}/x.npy)
check(input_not_npy 1 "^halibit: ${model}: not a NumPy .npy file \\(bad magic\\)" ""
      run ${model} -i ${model} -o ${WORK}/x.npy)
set(expected "expected uint8 \\[N, 28, 28, 1\\] or \\[28, 28, 1\\] \\(the input of ${model}\\)")
check(input_wrong_shape 1 "^halibit: ${logits}: ${expected}, got int32 \\[2, 10\\]" ""
      run ${model} -i ${logits} -o ${WORK}/x.npy)
check(output_unwritable 1 "^halibit: ${WORK}/no/such/dir/y.npy: cannot create" "" run ${model} -i ${input}
      -o ${WORK}/no/such/dir/y.npy)
check(json_unwritable 1 "^halibit: ${WORK}/no/such/dir/b.json: cannot create" "" bench ${model} --repeat 1 --warmup 0
      --json ${WORK}/no/such/dir/b.json)
check(eval_missing_data 1 "^halibit: ${WORK}/nodata: no t10k-images-idx3-ubyte or t10k-images-idx3-ubyte.gz" ""
      eval ${model} --data ${WORK}/nodata)
file(MAKE_DIRECTORY ${WORK}/notidx)
file(COPY_FILE ${input} ${WORK}/notidx/t10k-images-idx3-ubyte)
file(COPY_FILE ${input} ${WORK}/notidx/t10k-labels-idx1-ubyte)
check(eval_not_idx 1 "^halibit: ${WORK}/notidx/t10k-images-idx3-ubyte: not an IDX file" "" eval ${model}
      --data ${WORK}/notidx)
check(eval_zero_batch 2 "^halibit: --batch: " "" eval ${model} --batch 0)
check(classify_missing_image 1 "^halibit: ${WORK}/missing.jpg: cannot open" "" classify ${model} ${WORK}/missing.jpg)
check(classify_not_an_image 1 "^halibit: ${input}: not a JPEG or PNG file" "" classify ${model} ${input})
check(classify_without_images 2 "^halibit: images is required" "" classify ${model})
cmake_host_system_information(RESULT host_arch QUERY OS_PLATFORM)
if (host_arch MATCHES "x86_64|AMD64")
    check(isa_not_available 1 "^halibit: isa arm64 is not available" "" bench ${model} --isa arm64 --repeat 1)
endif ()

if (failures)
    message(FATAL_ERROR "${failures} of ${count} CLI checks failed")
endif ()
message("all ${count} CLI checks passed")
