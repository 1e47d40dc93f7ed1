#ifndef CSAGESYSTEM_H
#define CSAGESYSTEM_H
/* Wrappers for glibc pieces that need _GNU_SOURCE or variadic syscall(). The header stays free of
   system includes (they would clash with Swift's Glibc module); shim.c defines _GNU_SOURCE. */
int csage_pidfd_open(int pid);
int csage_pidfd_send_signal(int pidfd, int sig);
short csage_spawn_setsid_flag(void);
int csage_spawn_addclosefrom(void *file_actions, int from);
int csage_peer_cred(int fd, int *pid, unsigned int *uid, unsigned int *gid);
int csage_errno(void);
int csage_window_columns(int fd);
int csage_pipe2_cloexec(int fds[2]);
int csage_accept4(int fd);
int csage_spawn_addchdir(void *file_actions, const char *dir);
int csage_window_rows(int fd);
#endif
