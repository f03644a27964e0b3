/* vamos/version.h - the version of Vamos (vamos --version, tuning keys). */
#ifndef VAMOS_VERSION_H
#define VAMOS_VERSION_H
#define VAMOS_VERSION "0.1.0"
#endif
