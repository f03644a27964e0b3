/* fuzz_tunedb.c - the tuning database reader on any bytes: every line
 * becomes a record or a numbered warning; a record it keeps formats back
 * to a line it parses to the same record. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "schedule.h"
#include "tunedb.h"

static FILE *sink;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    sink = fopen("/dev/null", "w");
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;   /* fmemopen wants a buffer */
    FILE *f = fmemopen((void *)data, size, "r");
    if (!f)
        return 0;
    TuneDB db;
    char err[256];
    int rc = tunedb_read(f, "fuzz.db", &db, sink, err, sizeof err);
    fclose(f);
    if (rc)
        return 0;
    for (int i = 0; i < db.n; i++) {
        const TuneRecord *r = &db.r[i];
        if (!sched_valid(OP_ATTENTION, r->sched) || tunedb_find(&db, r->key) == NULL)
            abort();
        char line[2 * TUNE_SIG_MAX], *nl;
        TuneRecord back;
        const char *why;
        int n = tunedb_format(r, line, sizeof line);
        if (n <= 0 || (size_t)n >= sizeof line || !(nl = strchr(line, '\n')))
            abort();
        *nl = 0;
        if (!tunedb_parse(line, &back, &why) || back.key != r->key || strcmp(back.sig, r->sig) ||
            memcmp(&back.sched, &r->sched, sizeof back.sched))
            abort();
    }
    tunedb_free(&db);
    return 0;
}
