/* fuzz.h - what every fuzz harness defines (libFuzzer's entry points).
 *
 * Each harness is built twice: with clang's -fsanitize=fuzzer to fuzz
 * (scripts/fuzz.sh), and with replay.c's main as an ordinary test that
 * runs every input of its corpus under tests/fuzz/corpus/ (ctest, in the
 * plain and the sanitizer build).
 */
#ifndef VAMOS_FUZZ_H
#define VAMOS_FUZZ_H

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#endif
