# SPDX-License-Identifier: MIT
# Runs one contract program and passes only if it aborted and printed the expected violation.
#
#   cmake -DEVIO_CONTRACT_CONFIG=<file> -DEVIO_PROGRAM=<exe> -P expect_abort.cmake
#
# <file> (written by evio_add_contract_test) sets EVIO_CONTRACT_ID, EVIO_EXPECT_REGEX (a CMake
# regex, matched against the program's stderr) and EVIO_EMULATOR (e.g. Wine; may be empty).
#
# Why a script: CTest (checked with 3.25) reports a test killed by a signal as failed
# ("Subprocess aborted***Exception") even when PASS_REGULAR_EXPRESSION matches or WILL_FAIL is
# set. Accepted endings: killed by SIGABRT (execute_process says "Subprocess aborted" /
# "Child aborted"), or any nonzero exit code (Windows' abort() exits with 3, also under Wine).
# Rejected: exit 0, other signals (a segfault is not a contract check), failure to start, and
# any sanitizer report in stderr.

if(NOT EVIO_CONTRACT_CONFIG OR NOT EVIO_PROGRAM)
    message(FATAL_ERROR "usage: cmake -DEVIO_CONTRACT_CONFIG=<file> -DEVIO_PROGRAM=<exe> -P expect_abort.cmake")
endif()
include("${EVIO_CONTRACT_CONFIG}")

execute_process(
    COMMAND ${EVIO_EMULATOR} "${EVIO_PROGRAM}"
    RESULT_VARIABLE result
    OUTPUT_VARIABLE out
    ERROR_VARIABLE err
    TIMEOUT 50)

message("contract:  ${EVIO_CONTRACT_ID}")
message("program:   ${EVIO_EMULATOR} ${EVIO_PROGRAM}")
message("result:    ${result}")
message("expect:    ${EVIO_EXPECT_REGEX}   (in stderr)")
message("--- stdout ---\n${out}--- stderr ---\n${err}--------------")

if(result STREQUAL "0")
    message(FATAL_ERROR "FAIL: the program exited 0; the contract check did not fire")
elseif(NOT result MATCHES "^[1-9][0-9]*$" AND NOT result MATCHES "[Aa]bort")
    message(FATAL_ERROR "FAIL: the program ended with '${result}', expected an abort")
endif()
# Under ASan a segfault becomes "exit 1" plus a report: a sanitizer finding is never a pass.
if(err MATCHES "(Address|Undefined|Thread|Leak|Memory)Sanitizer|runtime error: ")
    message(FATAL_ERROR "FAIL: a sanitizer reported an error")
endif()
if(NOT err MATCHES "${EVIO_EXPECT_REGEX}")
    message(FATAL_ERROR "FAIL: stderr does not match the expected regex")
endif()
message("PASS: aborted with the expected message")
