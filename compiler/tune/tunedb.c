/* tunedb.c - the tuning database (see tunedb.h). */
#include "tunedb.h"

#include <errno.h>
#include <fcntl.h>
#include <llvm-c/Core.h>
#include <llvm-c/TargetMachine.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include "schedule.h"
#include "vamos/version.h"

static char machine[4096];
static const char *machine_target;   /* tune_set_target's */

void tune_set_target(const char *cpu)
{
    machine_target = cpu && *cpu && strcmp(cpu, "native") ? cpu : NULL;
    machine[0] = 0;
}

const char *tune_machine(void)
{
    if (machine[0])
        return machine;
    char *cpu = LLVMGetHostCPUName(), *feat = LLVMGetHostCPUFeatures();
    unsigned maj = 0, min = 0, pat = 0;
    LLVMGetVersion(&maj, &min, &pat);
    /* code for another target than this CPU (build --cpu, VAMOS_JIT_CPU)
     * has records of its own */
    const char *target = machine_target ? machine_target : getenv("VAMOS_JIT_CPU");
    if (target && !*target)
        target = NULL;
    snprintf(machine, sizeof machine, "cpu=%s features=%s llvm=%u.%u.%u vamos=%s%s%s", cpu, feat, maj, min, pat,
             VAMOS_VERSION, target ? " target=" : "", target ? target : "");
    LLVMDisposeMessage(cpu);
    LLVMDisposeMessage(feat);
    return machine;
}

uint64_t tune_key(const char *signature, const char *machine)
{
    XXH3_state_t *st = XXH3_createState();
    XXH3_64bits_reset(st);
    XXH3_64bits_update(st, signature, strlen(signature) + 1);   /* with the NUL: no run-together */
    XXH3_64bits_update(st, machine, strlen(machine) + 1);
    uint64_t h = XXH3_64bits_digest(st);
    XXH3_freeState(st);
    return h;
}

const char *tunedb_default_path(char *buf, size_t len)
{
    const char *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
    if (xdg && xdg[0] == '/')
        snprintf(buf, len, "%s/vamos/tune.db", xdg);
    else if (home && home[0])
        snprintf(buf, len, "%s/.cache/vamos/tune.db", home);
    else
        return NULL;
    return buf;
}

int tunedb_format(const TuneRecord *r, char *buf, size_t len)
{
    return snprintf(buf, len, "v1 %016llx qb=%d bk=%d rb=%d th=%d default=%.3f tuned=%.3f %s\n",
                    (unsigned long long)r->key, r->sched.qb, r->sched.bk, r->sched.rb, r->sched.th, r->default_us, r->tuned_us, r->sig);
}

static bool in_values(const unsigned char *v, long x)
{
    for (; *v; v++)
        if (*v == x)
            return true;
    return false;
}

/* "name=" then a number; advances *p past it and one space. */
static bool field(const char **p, const char *name, double *out)
{
    size_t n = strlen(name);
    if (strncmp(*p, name, n) || (*p)[n] != '=')
        return false;
    char *end;
    errno = 0;
    double v = strtod(*p + n + 1, &end);
    if (end == *p + n + 1 || errno || *end != ' ' || !(v >= 0 && v < 1e12))
        return false;
    *out = v;
    *p = end + 1;
    return true;
}

bool tunedb_parse(const char *line, TuneRecord *r, const char **why)
{
    memset(r, 0, sizeof *r);
    if (strncmp(line, "v1 ", 3)) {
        *why = "not a record of this format (it should start with 'v1 ')";
        return false;
    }
    const char *p = line + 3;
    for (int i = 0; i < 16; i++)
        if (!strchr("0123456789abcdef", p[i]) || !p[i]) {
            *why = "the key is not 16 hex digits";
            return false;
        }
    if (p[16] != ' ') {
        *why = "the key is not 16 hex digits";
        return false;
    }
    r->key = strtoull(p, NULL, 16);
    p += 17;
    double qb, bk, rb, th = SCHED_TH_DEFAULT;
    if (!field(&p, "qb", &qb) || !field(&p, "bk", &bk) || !field(&p, "rb", &rb) ||
        (!strncmp(p, "th=", 3) && !field(&p, "th", &th)) || !field(&p, "default", &r->default_us) ||
        !field(&p, "tuned", &r->tuned_us)) {
        *why = "a field is missing or not a number (qb, bk, rb, th, default, tuned)";
        return false;
    }
    /* th is optional: records written before it existed ran on the pool */
    if (!in_values(sched_qb_values, (long)qb) || !in_values(sched_bk_values, (long)bk) ||
        !in_values(sched_rb_values, (long)rb) || !in_values(sched_th_values, (long)th) || qb != (long)qb ||
        bk != (long)bk || rb != (long)rb || th != (long)th) {
        *why = "a schedule value is not one the kernels accept";
        return false;
    }
    r->sched = (Sched){ (unsigned char)qb, (unsigned char)bk, (unsigned char)rb, (unsigned char)th };
    size_t n = strlen(p);
    if (n == 0 || n >= TUNE_SIG_MAX) {
        *why = "the kernel signature is missing or too long";
        return false;
    }
    memcpy(r->sig, p, n + 1);
    return true;
}

static int push(TuneDB *db, const TuneRecord *r)
{
    if (db->n == db->cap) {
        int cap = db->cap ? 2 * db->cap : 16;
        TuneRecord *nr = realloc(db->r, sizeof *nr * (size_t)cap);
        if (!nr)
            return -1;
        db->r = nr, db->cap = cap;
    }
    db->r[db->n++] = *r;
    return 0;
}

int tunedb_load(const char *path, TuneDB *db, FILE *warn, char *err, size_t errlen)
{
    memset(db, 0, sizeof *db);
    int fd = open(path, O_RDONLY);
    if (fd < 0) {
        if (errno == ENOENT)
            return 0;
        snprintf(err, errlen, "cannot read the tuning database '%s': %s", path, strerror(errno));
        return -1;
    }
    flock(fd, LOCK_SH);   /* no half-appended record */
    FILE *f = fdopen(fd, "r");
    if (!f) {
        close(fd);
        snprintf(err, errlen, "cannot read the tuning database '%s': %s", path, strerror(errno));
        return -1;
    }
    int rc = tunedb_read(f, path, db, warn, err, errlen);
    fclose(f);
    return rc;
}

int tunedb_read(FILE *f, const char *path, TuneDB *db, FILE *warn, char *err, size_t errlen)
{
    memset(db, 0, sizeof *db);
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    long lineno = 0;
    int rc = 0;
    while ((len = getline(&line, &cap, f)) >= 0) {
        lineno++;
        bool complete = len > 0 && line[len - 1] == '\n';
        if (complete)
            line[--len] = 0;
        if (len == 0 || line[0] == '#')
            continue;
        TuneRecord r;
        const char *why = "the line has no end (a record is cut off)";
        if ((size_t)len != strlen(line))
            why = "the line holds a NUL byte";
        else if (complete && tunedb_parse(line, &r, &why)) {
            if (push(db, &r)) {
                snprintf(err, errlen, "out of memory reading '%s'", path);
                rc = -1;
                break;
            }
            continue;
        }
        db->bad++;
        if (warn)
            fprintf(warn, "%s:%ld: warning: skipped: %s\n", path, lineno, why);
    }
    if (rc == 0 && ferror(f)) {
        snprintf(err, errlen, "cannot read the tuning database '%s': %s", path, strerror(errno));
        rc = -1;
    }
    free(line);
    return rc;
}

/* mkdir -p of path's directory. */
static int make_parent(const char *path)
{
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (!slash || slash == dir)
        return 0;
    *slash = 0;
    for (char *p = dir + 1; *p; p++)
        if (*p == '/') {
            *p = 0;
            if (mkdir(dir, 0755) && errno != EEXIST)
                return -1;
            *p = '/';
        }
    return mkdir(dir, 0755) && errno != EEXIST ? -1 : 0;
}

int tunedb_append(const char *path, const TuneRecord *r, char *err, size_t errlen)
{
    char line[TUNE_SIG_MAX + 200];
    int n = tunedb_format(r, line, sizeof line);
    if (n <= 0 || (size_t)n >= sizeof line) {
        snprintf(err, errlen, "internal error: a tuning record does not fit a line");
        return -1;
    }
    if (make_parent(path)) {
        snprintf(err, errlen, "cannot create the directory of '%s': %s", path, strerror(errno));
        return -1;
    }
    int fd = open(path, O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) {
        snprintf(err, errlen, "cannot write the tuning database '%s': %s", path, strerror(errno));
        return -1;
    }
    int rc = 0;
    if (flock(fd, LOCK_EX)) {
        snprintf(err, errlen, "cannot lock '%s': %s", path, strerror(errno));
        rc = -1;
    } else {
        /* a file whose last line was cut off (a killed writer): end it
         * first, so this record starts a line of its own */
        struct stat st;
        char last = '\n';
        if (fstat(fd, &st) == 0 && st.st_size > 0 && pread(fd, &last, 1, st.st_size - 1) == 1 && last != '\n')
            rc = write(fd, "\n", 1) == 1 ? 0 : -1;
        if (rc == 0 && write(fd, line, (size_t)n) != n)
            rc = -1;
        if (rc)
            snprintf(err, errlen, "cannot write the tuning database '%s': %s", path, strerror(errno));
    }
    close(fd);   /* releases the lock */
    return rc;
}

const TuneRecord *tunedb_find(const TuneDB *db, uint64_t key)
{
    for (int i = db->n - 1; i >= 0; i--)
        if (db->r[i].key == key)
            return &db->r[i];
    return NULL;
}

void tunedb_free(TuneDB *db)
{
    free(db->r);
    memset(db, 0, sizeof *db);
}
