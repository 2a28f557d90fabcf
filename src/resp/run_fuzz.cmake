# Builds resp_fuzz if it is out of date, then runs it for SECONDS seconds.
# Invoked by the CTest test resp_fuzz_short (see CMakeLists.txt) with
# -DBUILD_DIR -DFUZZER -DWORK_CORPUS -DSEED_CORPUS -DSECONDS.
execute_process(COMMAND ${CMAKE_COMMAND} --build ${BUILD_DIR} --target resp_fuzz
                RESULT_VARIABLE build_rc)
if(NOT build_rc EQUAL 0)
  message(FATAL_ERROR "building resp_fuzz failed (${build_rc})")
endif()
file(MAKE_DIRECTORY ${WORK_CORPUS})
execute_process(COMMAND ${FUZZER} -max_total_time=${SECONDS} -timeout=10 -rss_limit_mb=2048
                        -print_final_stats=1 ${WORK_CORPUS} ${SEED_CORPUS}
                RESULT_VARIABLE fuzz_rc)
if(NOT fuzz_rc EQUAL 0)
  message(FATAL_ERROR "resp_fuzz found a failure (exit ${fuzz_rc}); the crashing input is in the working directory")
endif()
