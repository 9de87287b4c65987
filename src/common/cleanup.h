/* SPDX-License-Identifier: MIT */
#pragma once
/* Cleanup-attribute helpers in the style of systemd and crun. */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <errno.h>

#define _cleanup_(f) __attribute__((cleanup(f)))

static inline void freep(void *p) {
        free(*(void **) p);
}
#define _cleanup_free_ _cleanup_(freep)

static inline void closep(int *fd) {
        if (*fd >= 0) {
                int saved = errno;
                close(*fd);
                errno = saved;
        }
}
#define _cleanup_close_ _cleanup_(closep)

static inline void fclosep(FILE **f) {
        if (*f)
                fclose(*f);
}
#define _cleanup_fclose_ _cleanup_(fclosep)

/* Hand ownership on: returns the value and resets the variable. */
#define TAKE_PTR(p) ({ __typeof__(p) _p = (p); (p) = NULL; _p; })
#define TAKE_FD(fd) ({ int _fd = (fd); (fd) = -1; _fd; })

/* Defines type##p() for a NULL-safe destructor type##_free(type *). */
#define DEFINE_CLEANUP_FUNC(type, func)                 \
        static inline void func##p(type **p) {          \
                if (*p)                                 \
                        func(*p);                       \
        }

#define ELEMENTSOF(x) (sizeof(x) / sizeof((x)[0]))
