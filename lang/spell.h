/* spell.h - edit distance for "did you mean". */
#ifndef VAMOS_SPELL_H
#define VAMOS_SPELL_H

/* Levenshtein distance of two short names (99 past 30 characters). */
int edit_distance(const char *a, const char *b);

#endif
