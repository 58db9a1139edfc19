package io.tidemark.cli;

import com.fasterxml.jackson.databind.node.ObjectNode;
import io.tidemark.core.Human;
import io.tidemark.core.repository.Manifest;
import io.tidemark.core.target.ObjectTarget;
import io.tidemark.engine.EngineConfig;
import io.tidemark.format.Json;
import io.tidemark.repository.Repository;
import io.tidemark.workers.files.PointFiles;
import io.tidemark.workers.files.PointMount;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.concurrent.Callable;
import java.util.concurrent.CountDownLatch;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

@Command(
        name = "mount",
        mixinStandardHelpOptions = true,
        description = {
            "Mount one file system of a restore point read-only on DIR.",
            "FUSE, through libguestfs's guestmount over the point's NBD export, until interrupted (Ctrl-C)",
            "or unmounted (`guestunmount DIR`).",
            "Only the chunks read through the mount are fetched. FS as `tidemark files ls POINT` lists it.",
            "Runbook: docs/runbooks/files.md",
            "",
            "Example:  tidemark mount 20261207T012233.123Z-3f9a /mnt/point --fs sda1",
        })
final class MountCommand implements Callable<Integer> {

    @Parameters(index = "0", paramLabel = "POINT", description = "the restore point id (as `tidemark list` shows)")
    String point;

    @Parameters(index = "1", paramLabel = "DIR", description = "an existing empty directory to mount on")
    Path dir;

    @Option(names = "--fs", required = true, paramLabel = "FS", description = "the file system: sda1, vg0/lv0 …")
    String fs;

    @Mixin
    FilesCommand.Source source;

    @Override
    public Integer call() throws IOException {
        PointFiles.Options options = source.options();
        EngineConfig c = source.engine.engineConfig();
        Path work = source.workDir != null ? source.workDir : Files.createTempDirectory("tidemark-mount");
        try (ObjectTarget target = source.open(c)) {
            Repository repo = Repository.open(target, source.engine.passphrases(c));
            Manifest m = source.find(repo, point);
            String d = source.disk != null ? source.disk : FilesCommand.Source.onlyDisk(m);
            long t0 = System.nanoTime();
            try (PointMount mount = PointMount.start(repo, m, d, fs, dir, work, options)) {
                ObjectNode doc = Json.mapper().createObjectNode();
                doc.put("vm", m.vm()).put("restorePoint", m.id()).put("disk", d).put("fs", fs);
                doc.put("mountpoint", mount.dir().toString()).put("secondsToMount", (System.nanoTime() - t0) / 1e9);
                if (source.json) {
                    System.out.println(Json.mapper().writeValueAsString(doc));
                } else {
                    System.out.printf(
                            "mounted %s of %s (%s) read-only on %s in %.1f s; Ctrl-C or `guestunmount %s` to end%n",
                            fs, m.id(), m.vm(), mount.dir(), (System.nanoTime() - t0) / 1e9, mount.dir());
                }
                System.out.flush();
                awaitEnd(mount);
                System.err.printf("unmounted %s; %s fetched%n", mount.dir(), Human.bytes(mount.bytesFetched()));
            }
        } finally {
            if (source.workDir == null) {
                FilesCommand.deleteTree(work);
            }
        }
        return 0;
    }

    /** Until unmounted from outside, the process is stopped (shutdown hook) or this thread is interrupted. */
    private static void awaitEnd(PointMount mount) {
        CountDownLatch stopped = new CountDownLatch(1);
        Thread hook = new Thread(
                () -> {
                    mount.close();
                    stopped.countDown();
                },
                "mount-stop");
        Runtime.getRuntime().addShutdownHook(hook);
        try {
            while (!mount.awaitUnmounted(Duration.ofMillis(500)) && stopped.getCount() > 0) {
                // poll: unmounted by guestunmount, or stopped by the hook
            }
        } catch (InterruptedException e) {
            // an interrupt asks to stop, like Ctrl-C: the flag stays clear so that the unmount can wait
        } finally {
            try {
                Runtime.getRuntime().removeShutdownHook(hook);
            } catch (IllegalStateException e) {
                // the JVM is shutting down: the hook is running
            }
        }
    }
}
