# Per-target build settings: warnings, sanitizers and the test helper.

# Warnings every otsync target compiles with; errors when OTSYNC_WARNINGS_AS_ERRORS.
function(otsync_enable_warnings target)
  target_compile_options(${target} PRIVATE
    -Wall -Wextra -Wpedantic -Wshadow -Wconversion -Wsign-conversion
    -Wnon-virtual-dtor -Wold-style-cast -Woverloaded-virtual -Wimplicit-fallthrough)
  if(OTSYNC_WARNINGS_AS_ERRORS)
    target_compile_options(${target} PRIVATE -Werror)
  endif()
endfunction()

# ASan + UBSan on one target (compile and link), when OTSYNC_SANITIZE is on;
# under OTSYNC_FUZZ also libFuzzer's coverage instrumentation (the fuzz targets
# themselves add -fsanitize=fuzzer, which brings libFuzzer's main).
function(otsync_enable_sanitizers target)
  if(OTSYNC_FUZZ)
    target_compile_options(${target} PRIVATE
      -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer)
    target_link_options(${target} PRIVATE -fsanitize=fuzzer-no-link,address,undefined)
  elseif(OTSYNC_SANITIZE)
    target_compile_options(${target} PRIVATE
      -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer)
    target_link_options(${target} PRIVATE -fsanitize=address,undefined)
  endif()
endfunction()

# otsync_library(NAME SOURCES ...): a library `otsync_NAME` with alias
# `otsync::NAME`, exported (when installed) as `otsync::NAME` too.
function(otsync_library name)
  add_library(otsync_${name} ${ARGN})
  add_library(otsync::${name} ALIAS otsync_${name})
  set_target_properties(otsync_${name} PROPERTIES EXPORT_NAME ${name})
  target_include_directories(otsync_${name} PUBLIC
    $<BUILD_INTERFACE:${PROJECT_SOURCE_DIR}/include>
    $<INSTALL_INTERFACE:include>)
  target_compile_features(otsync_${name} PUBLIC cxx_std_20)
  otsync_enable_warnings(otsync_${name})
  otsync_enable_sanitizers(otsync_${name})
endfunction()

# otsync_add_test(NAME SOURCES ... LIBS ... LABELS ...): one GoogleTest binary, one ctest entry.
function(otsync_add_test name)
  cmake_parse_arguments(arg "" "TIMEOUT" "SOURCES;LIBS;LABELS" ${ARGN})
  add_executable(${name} ${arg_SOURCES})
  target_link_libraries(${name} PRIVATE ${arg_LIBS} GTest::gtest GTest::gtest_main)
  target_include_directories(${name} PRIVATE ${PROJECT_SOURCE_DIR}/tests)
  target_compile_definitions(${name} PRIVATE
    OTSYNC_TRACES_DIR="${OTSYNC_TRACES_DIR}")
  otsync_enable_warnings(${name})
  # GCC 12 at -O3 reports std::string concatenations in test code as
  # overlapping copies (GCC bug 105329, a false -Wrestrict).
  if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU")
    target_compile_options(${name} PRIVATE -Wno-restrict)
  endif()
  otsync_enable_sanitizers(${name})
  add_test(NAME ${name} COMMAND ${name})
  if(NOT arg_TIMEOUT)
    set(arg_TIMEOUT 300)
  endif()
  set_tests_properties(${name} PROPERTIES LABELS "${arg_LABELS}" TIMEOUT ${arg_TIMEOUT})
endfunction()
