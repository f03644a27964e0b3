/* cpu.c - does this CPU run the code a translator was built for?
 *
 * `vamos build` compiles for this machine's CPU (--cpu native, the
 * default) or for an x86-64 level (--cpu x86-64-v3, ...), and records
 * which in the translator as vamos_cpu: "native:" and LLVM's feature
 * string ("+avx2,+fma,-avx512f,..."), or the level's name. A translator
 * checks it before it runs a kernel, so a copy taken to an older machine
 * says what is missing instead of dying on an illegal instruction.
 */
#include <stdio.h>
#include <string.h>

#include "vamos/model.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
/* The features LLVM may use that the compilers can test for, by the
 * names both use (__builtin_cpu_supports takes only literals). */
static bool x86_has(const char *f)
{
#define F(name)                   \
    if (!strcmp(f, name))         \
        return __builtin_cpu_supports(name);
    F("sse3") F("ssse3") F("sse4.1") F("sse4.2") F("popcnt") F("avx") F("avx2") F("fma") F("bmi") F("bmi2")
    F("f16c") F("movbe") F("avx512f") F("avx512bw") F("avx512dq") F("avx512vl") F("avx512cd")
    F("avx512vnni") F("avx512bf16") F("avx512vbmi") F("avx512vbmi2") F("avx512ifma") F("avx512bitalg")
    F("avx512vpopcntdq") F("avx512fp16") F("vpclmulqdq") F("gfni") F("vaes") F("pclmul") F("aes")
#undef F
    if (!strcmp(f, "x86-64"))
        return true;
    if (!strcmp(f, "x86-64-v2"))
        return __builtin_cpu_supports("x86-64-v2");
    if (!strcmp(f, "x86-64-v3"))
        return __builtin_cpu_supports("x86-64-v3");
    if (!strcmp(f, "x86-64-v4"))
        return __builtin_cpu_supports("x86-64-v4");
    return true;   /* one the compilers cannot test: assume present */
}
#else
static bool x86_has(const char *f)
{
    (void)f;
    return true;
}
#endif

int vamos_cpu_check_with(const char *spec, bool (*has)(const char *feature), char *err, size_t errlen)
{
    if (!spec || !*spec)
        return 0;   /* not recorded: nothing to check */
    if (strncmp(spec, "native:", 7)) {
        if (has(spec))
            return 0;
        snprintf(err, errlen, "this translator was built for %s CPUs, and this CPU is not one", spec);
        return -1;
    }
    char missing[256] = "";
    size_t at = 0;
    for (const char *p = spec + 7; *p;) {
        const char *end = strchr(p, ',');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        char f[48];
        if (*p == '+' && n - 1 < sizeof f) {
            memcpy(f, p + 1, n - 1);
            f[n - 1] = 0;
            if (!has(f) && at < sizeof missing)
                at += (size_t)snprintf(missing + at, sizeof missing - at, "%s%s", at ? ", " : "", f);
        }
        p += n + (end != NULL);
    }
    if (!at)
        return 0;
    snprintf(err, errlen,
             "this translator was built for the CPU of the machine that built it, and this CPU lacks %s: "
             "build it again here, or with `vamos build --cpu x86-64-v3` (or x86-64-v2, x86-64) to run it "
             "on most machines",
             missing);
    return -1;
}

int vamos_cpu_check(const char *spec, char *err, size_t errlen)
{
    return vamos_cpu_check_with(spec, x86_has, err, errlen);
}
