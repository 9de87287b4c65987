/* SPDX-License-Identifier: MIT */
/* swtpm for VMs with an emulated TPM: the state directory is made once with
 * swtpm_setup, then `swtpm socket` serves the control channel on a socket
 * the monitor created (QEMU holds the other end) and ends with it. */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cleanup.h"
#include "exec.h"
#include "run-internal.h"

/* swtpm's Landlock ruleset: its code, its configuration and its state
 * directory, nothing else; swtpm_setup (one run with fixed arguments, no
 * guest yet) also its pid file, which it keeps in /tmp whatever $TMPDIR says. */
static int sandbox(struct run_sandbox *sb, const char *state_dir, bool setup, phy_error *err) {
        static const char *const conf[] = { "/etc/swtpm_setup.conf", "/etc/swtpm-localca.conf",
                                            "/etc/swtpm-localca.options" };
        int r;
        if ((r = run_sandbox_begin(sb, err)) < 0 || (r = run_sandbox_allow_base(sb, err)) < 0 ||
            (r = run_sandbox_allow(sb, state_dir, RUN_SB_DIR, err)) < 0 ||
            (setup && (r = run_sandbox_allow(sb, "/tmp", RUN_SB_RW | LANDLOCK_ACCESS_FS_MAKE_REG |
                                                                 LANDLOCK_ACCESS_FS_REMOVE_FILE, err)) < 0))
                return r;
        for (size_t i = 0; i < ELEMENTSOF(conf); i++)
                if ((r = run_sandbox_allow(sb, conf[i], RUN_SB_R, err)) < 0)
                        return r;
        return 0;
}

/* exec_spawn with stdout/stderr appended to log_path (in the run dir,
 * which only we write: opened without following a symlink, and the child
 * writes through the fd), the given fd kept open, as the VM's user and
 * confined to state_dir. */
static int spawn(char *const argv[], const char *log_path, int keep_fd, const char *state_dir, bool setup,
                 const struct run_creds *c, pid_t *ret_pid, phy_error *err) {
        _cleanup_close_ int logfd = open(log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0640);
        if (logfd < 0)
                return phy_error_set(err, errno, "cannot open the log '%s': %s", log_path, strerror(errno));
        struct run_sandbox sb;
        int r = sandbox(&sb, state_dir, setup, err);
        if (r >= 0) {
                struct run_child child = { .creds = c, .sb = &sb };
                struct exec_spawn s = { .argv = argv, .log_fd = logfd, .keep = &keep_fd, .n_keep = 1, .env_clean = true,
                                        .setup = run_child_setup, .data = &child,
                                        .setup_error = "phyllo-monitor: cannot drop privileges or apply the "
                                                       "Landlock ruleset before running swtpm" };
                r = exec_spawn(&s, ret_pid, err);
        }
        run_sandbox_done(&sb);
        return r;
}

int run_swtpm_setup(const char *swtpm_setup, const char *state_dir, const struct run_creds *c,
                    const char *log_path, phy_error *err) {
        struct stat st;
        if (!swtpm_setup)
                return phy_error_set(err, ENOENT, "this VM has an emulated TPM but swtpm_setup is not installed; "
                                     "install swtpm-tools (apt-get install swtpm-tools)");
        _cleanup_free_ char *perm = run_file(state_dir, "tpm2-00.permall");
        if (!perm)
                return phy_error_set(err, ENOMEM, "out of memory");
        if (stat(perm, &st) == 0)
                return 0;       /* made before */
        if (mkdir(state_dir, 0700) < 0 && errno != EEXIST)
                return phy_error_set(err, errno, "cannot create the TPM state directory '%s': %s", state_dir,
                                     strerror(errno));
        if (c->drop && lchown(state_dir, c->uid, c->gid) < 0)
                return phy_error_set(err, errno, "cannot hand '%s' to user '%s': %s", state_dir, c->user,
                                     strerror(errno));
        /* No EK/platform certificates: those need swtpm's local CA, which an
         * unprivileged user cannot use; Windows 11 does not ask for them. */
        char *argv[] = { (char *) swtpm_setup, "--tpm2", "--tpmstate", (char *) state_dir, "--createek",
                         "--lock-nvram", "--not-overwrite", NULL };
        pid_t pid;
        int r = spawn(argv, log_path, -1, state_dir, true, c, &pid, err);
        if (r < 0)
                return r;
        int status;
        while (waitpid(pid, &status, 0) < 0)
                if (errno != EINTR)
                        return phy_error_set(err, errno, "cannot wait for swtpm_setup: %s", strerror(errno));
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
                _cleanup_free_ char *tail = run_file_tail(log_path, 5);
                return phy_error_set(err, EIO, "swtpm_setup could not create the TPM state in '%s' (see '%s'): %s",
                                     state_dir, log_path, tail ? tail : "");
        }
        return 0;
}

int run_swtpm_spawn(const char *swtpm, const char *state_dir, int ctrl_fd, const char *log_path,
                    const struct run_creds *c, pid_t *ret_pid, phy_error *err) {
        if (!swtpm)
                return phy_error_set(err, ENOENT, "this VM has an emulated TPM but swtpm is not installed; "
                                     "install swtpm (apt-get install swtpm)");
        _cleanup_free_ char *tpmstate = NULL, *ctrl = NULL;
        if (asprintf(&tpmstate, "dir=%s,mode=0600", state_dir) < 0 ||
            asprintf(&ctrl, "type=unixio,clientfd=%d", ctrl_fd) < 0)
                return phy_error_set(err, ENOMEM, "out of memory");
        char *argv[] = { (char *) swtpm, "socket", "--tpm2", "--tpmstate", tpmstate, "--ctrl", ctrl,
                         "--terminate", NULL };
        return spawn(argv, log_path, ctrl_fd, state_dir, false, c, ret_pid, err);
}
