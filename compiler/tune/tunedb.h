/* tunedb.h - the tuning database: schedules `vamos tune` found, one
 * plain-text record a line, shared by every model on the machine.
 *
 *     v1 KEY qb=N bk=N rb=N default=US tuned=US SIGNATURE
 *
 * KEY is 16 hex digits: the xxHash3 of the kernel's signature (its op,
 * shapes and attributes, schedule.c) and of the machine (CPU model and
 * features, LLVM version, Vamos version, tune_machine), so a record is
 * never used on another machine or by another compiler. US: the median
 * microseconds of the default and of the chosen schedule. SIGNATURE is
 * for people (--show). Records are appended under an exclusive lock in
 * one write each, so concurrent tuners lose and tear nothing; the last
 * record of a key wins. A line that does not parse is reported with its
 * line number and skipped.
 */
#ifndef VAMOS_TUNEDB_H
#define VAMOS_TUNEDB_H

#include <stdint.h>
#include <stdio.h>

#include "graph.h"

#define TUNE_SIG_MAX 400

typedef struct TuneRecord {
    uint64_t key;
    Sched sched;
    double default_us, tuned_us;
    char sig[TUNE_SIG_MAX];
} TuneRecord;

typedef struct TuneDB {
    TuneRecord *r;
    int n, cap;
    int bad;       /* lines skipped */
} TuneDB;

/* The machine part of every key: CPU name, features, LLVM and Vamos
 * versions (computed once). */
const char *tune_machine(void);

/* Records for code compiled for cpu (vamos build --cpu; NULL or "native":
 * this CPU), not for this CPU: tune_machine then names the target too,
 * as it does under VAMOS_JIT_CPU. */
void tune_set_target(const char *cpu);
uint64_t tune_key(const char *signature, const char *machine);

/* $XDG_CACHE_HOME/vamos/tune.db, else $HOME/.cache/vamos/tune.db; NULL
 * when neither variable is set. */
const char *tunedb_default_path(char *buf, size_t len);

/* Read path into db (a missing file is an empty database). Bad lines go
 * to warn as "path:LINE: why" and are skipped. -1 with a message in err
 * when the file exists but cannot be read. */
int tunedb_load(const char *path, TuneDB *db, FILE *warn, char *err, size_t errlen);
/* The same from an open stream; path names it in messages. */
int tunedb_read(FILE *f, const char *path, TuneDB *db, FILE *warn, char *err, size_t errlen);
/* Append one record (creating the file and its directory). */
int tunedb_append(const char *path, const TuneRecord *r, char *err, size_t errlen);
const TuneRecord *tunedb_find(const TuneDB *db, uint64_t key);
void tunedb_free(TuneDB *db);

/* The record as its line (with the newline); returns its length. */
int tunedb_format(const TuneRecord *r, char *buf, size_t len);
/* Parse one line (without the newline); false with the reason in why. */
bool tunedb_parse(const char *line, TuneRecord *r, const char **why);

#endif
