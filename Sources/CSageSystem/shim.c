#define _GNU_SOURCE 1
#include <sys/types.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/ioctl.h>
#include <spawn.h>
#include <unistd.h>
#include <signal.h>
#include <errno.h>
#include <fcntl.h>
#include "csagesystem.h"

int csage_pidfd_open(int pid) { return (int)syscall(SYS_pidfd_open, (pid_t)pid, 0); }
int csage_pidfd_send_signal(int pidfd, int sig) { return (int)syscall(SYS_pidfd_send_signal, pidfd, sig, NULL, 0); }
short csage_spawn_setsid_flag(void) { return POSIX_SPAWN_SETSID; }
int csage_spawn_addclosefrom(void *fa, int from) {
    return posix_spawn_file_actions_addclosefrom_np((posix_spawn_file_actions_t *)fa, from);
}
int csage_peer_cred(int fd, int *pid, unsigned int *uid, unsigned int *gid) {
    struct ucred cred; socklen_t len = sizeof(cred);
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) return -1;
    *pid = cred.pid; *uid = cred.uid; *gid = cred.gid; return 0;
}
int csage_errno(void) { return errno; }
int csage_window_columns(int fd) {
    struct winsize ws; if (ioctl(fd, TIOCGWINSZ, &ws) != 0) return 0; return ws.ws_col;
}
int csage_pipe2_cloexec(int fds[2]) { return pipe2(fds, O_CLOEXEC); }
int csage_accept4(int fd) { return accept4(fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK); }
int csage_spawn_addchdir(void *fa, const char *dir) {
    return posix_spawn_file_actions_addchdir_np((posix_spawn_file_actions_t *)fa, dir);
}
int csage_window_rows(int fd) {
    struct winsize ws; if (ioctl(fd, TIOCGWINSZ, &ws) != 0) return 0; return ws.ws_row;
}
