package io.tidemark.recovery;

import io.tidemark.core.RetriableException;
import io.tidemark.core.files.FileTrees;
import io.tidemark.core.repository.DiskEntry;
import io.tidemark.repository.Repository;
import io.tidemark.workers.guest.CheckGuest;
import io.tidemark.workers.qga.QgaGuestAgent;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/**
 * The drill's boot check: boots a throwaway {@link CheckGuest} from a tiny-guest kernel directory
 * with the restored disks attached through copy-on-write overlays (the restored images stay as they
 * were), waits for its guest agent, and has the guest show that every disk holding an ext2/3/4 file
 * system is mounted ({@code /dev/vda} by the guest's init on {@code /mnt}, the others by {@code
 * mount} through guest-exec). Disks without such a file system are checked on the host by chunk
 * digests ({@link DiskCheck#digests}).
 */
public final class BootCheck {

    static final String BOOT = "boot";

    /** What the boot found: the summary line ({@code boot: agent answered in N s} or the failure) and one outcome per disk. */
    public record Result(String summary, boolean agentAnswered, List<DiskCheck.Outcome> outcomes) {}

    /** A restored disk: the point's entry and the restored raw image. */
    public record Restored(DiskEntry disk, Path image) {}

    private BootCheck() {}

    public static Result run(Repository repo, Path kernelDir, List<Restored> disks, Path scratch, Duration deadline) {
        CheckGuest.Kernel kernel = CheckGuest.Kernel.in(kernelDir);
        List<CheckGuest.Disk> attach = new ArrayList<>();
        for (int i = 0; i < disks.size(); i++) {
            Restored r = disks.get(i);
            Path overlay = CheckGuest.overlay(
                    r.image(), "raw", scratch.resolve(r.disk().name() + ".overlay.qcow2"));
            attach.add(new CheckGuest.Disk("d" + i, overlay, "qcow2"));
        }
        Path sockets = socketDir();
        try (CheckGuest guest = CheckGuest.start(kernel, "drill", sockets, attach)) {
            Duration answered;
            try {
                answered = guest.awaitAgent(deadline);
            } catch (RetriableException e) {
                String why = "boot: FAILED: " + e.getMessage();
                List<DiskCheck.Outcome> none = disks.stream()
                        .map(r -> new DiskCheck.Outcome(BOOT, false, "not checked: the guest did not come up"))
                        .toList();
                return new Result(why, false, none);
            }
            String summary = String.format(Locale.ROOT, "boot: agent answered in %.1f s", answered.toMillis() / 1000.0);
            List<DiskCheck.Outcome> outcomes = new ArrayList<>();
            for (int i = 0; i < disks.size(); i++) {
                Restored r = disks.get(i);
                outcomes.add(
                        DiskCheck.isExt(r.image())
                                ? mounted(guest.agent(), i, deadline)
                                : DiskCheck.digests(repo, r.disk(), r.image()));
            }
            return new Result(summary, true, outcomes);
        } finally {
            deleteRecursively(sockets);
        }
    }

    /** Whether the guest has {@code /dev/vdX} mounted (mounting it if its init did not), and what is on it. */
    static DiskCheck.Outcome mounted(QgaGuestAgent agent, int index, Duration deadline) {
        String dev = "/dev/vd" + (char) ('a' + index);
        String script = "d=" + dev + "; m=$(grep \"^$d \" /proc/mounts | cut -d' ' -f2 | head -n1)\n"
                + "if [ -z \"$m\" ]; then m=/run/check/" + dev.substring(5) + "; mkdir -p $m;"
                + " mount -t ext4 $d $m 2>&1 || { echo \"$d not mounted\"; dmesg | grep -i ext4 | tail -n 3; exit 1; }; fi\n"
                + "echo \"$d mounted on $m\"; ls -a $m | tr '\\n' ' '";
        QgaGuestAgent.ExecResult e = agent.exec(deadline, "/bin/sh", List.of("-c", script));
        String report = (e.stdout() + e.stderr()).strip();
        return new DiskCheck.Outcome(BOOT, e.exitCode() == 0, report);
    }

    /** A short directory for the guest's sockets (a scratch path may be too long for a Unix socket). */
    private static Path socketDir() {
        try {
            return Files.createTempDirectory(Path.of(System.getProperty("java.io.tmpdir")), "tmdg-");
        } catch (IOException e) {
            throw new RetriableException("cannot create a directory for the check guest's sockets: " + e, e);
        }
    }

    private static void deleteRecursively(Path dir) {
        try {
            FileTrees.delete(dir);
        } catch (IOException e) {
            throw new RetriableException("cannot remove the check guest's directory " + dir + "; remove it by hand", e);
        }
    }
}
