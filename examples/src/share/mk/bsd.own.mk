# bsd.own.mk: who owns installed files, where they go.
.if !defined(_BSD_OWN_MK_)
_BSD_OWN_MK_=	1

# root:wheel on DragonFly. Numeric, so that a host without a wheel group
# copes; a build run by a user installs as that user.
_UID!=		id -u
.if ${_UID} == 0
BINOWN?=	0
BINGRP?=	0
.else
BINOWN!=	id -u
BINGRP!=	id -g
.endif
BINMODE?=	555
NOBINMODE?=	444
LIBMODE?=	444
SHAREMODE?=	444
MANMODE?=	444

BINDIR?=	/usr/bin
LIBDIR?=	/usr/lib
SHLIBDIR?=	/lib
INCLUDEDIR?=	/usr/include
MANDIR?=	/usr/share/man/man

# chflags exists on the BSDs only; elsewhere file flags are a no-op.
.if exists(/bin/chflags) || exists(/usr/bin/chflags)
CHFLAGS?=	chflags
.else
CHFLAGS?=	: chflags
.endif

# Where buildworld put the headers and libraries the programs build against.
_SHLIBDIRPREFIX?=
.endif
