/*
 * runner.h - the one way a suite's main runs it (core and edge suites).
 *
 * Runs every test of s, each in its own forked process (a crash fails one
 * test, not the run), in CK_NORMAL verbosity, frees the runner, and
 * returns the process exit status: 0 if every test passed, 1 otherwise.
 */
#ifndef SM_TEST_RUNNER_H
#define SM_TEST_RUNNER_H

#include <check.h>

static inline int sm_run_suite(Suite *s)
{
    SRunner *sr = srunner_create(s);
    srunner_set_fork_status(sr, CK_FORK);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}

#endif
