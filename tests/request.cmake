# The control protocol's request parser (coordinator/request.c), tested on its own: included by
# tests/CMakeLists.txt after PkgConfig::CRITERION is found. The fuzz target beside it
# (fuzz_request.c) is built by scripts/fuzz.sh with clang, not here.
add_executable(test_request ${CMAKE_CURRENT_LIST_DIR}/test_request.c)
target_link_libraries(test_request PRIVATE coordinator PkgConfig::CRITERION farm_warnings)
add_test(NAME request COMMAND test_request --verbose=0)
# The sanitizer settings of the other tests, when this file is included after they are set.
if(DEFINED farm_test_env)
  set_tests_properties(request PROPERTIES ENVIRONMENT "${farm_test_env}")
endif()
