package io.tidemark.demo;

import io.tidemark.cli.Main;
import java.io.IOException;
import java.nio.file.Path;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

@Command(
        mixinStandardHelpOptions = true,
        name = "demo",
        description = {
            "Show the whole flow end to end on a throwaway VM, in about a minute.",
            "Run the whole flow on this machine with embedded defaults:",
            "a throwaway QEMU VM (TCG) writing known data, an embedded Kafka broker, S3Proxy on loopback,",
            "a policy firing every 10 s (full backup, then incrementals read from QEMU's dirty bitmap),",
            "replication to S3, then a restore of the latest point from S3 alone, checked against the",
            "disk's SHA-256 at the snapshot moment. Everything it starts is stopped when it ends."
        },
        footerHeading = "%nExamples:%n",
        footer = {"  tidemark demo", "  tidemark demo --dir /tmp/tm-demo --points 5 --encrypt --json"})
final class DemoCommand implements Callable<Integer> {

    @Option(
            names = "--dir",
            defaultValue = "tidemark-demo",
            description = "scratch directory (default: ./tidemark-demo)")
    Path dir;

    @Option(names = "--points", defaultValue = "3", description = "restore points to take (default: 3)")
    int points;

    @Option(
            names = "--encrypt",
            description = "encrypt the repositories (AES-256-GCM) under a random passphrase, written to"
                    + " DIR/secrets/passphrase for the engine")
    boolean encrypt;

    @Option(
            names = "--json",
            description = "print one JSON summary on stdout (restore points, checksums, seconds); the story goes"
                    + " to stderr")
    boolean json;

    @Override
    public Integer call() throws IOException, InterruptedException {
        long t0 = System.nanoTime();
        // the demo prints its own story; the engine's log would interleave with it
        ((ch.qos.logback.classic.Logger) org.slf4j.LoggerFactory.getLogger("io.tidemark"))
                .setLevel(ch.qos.logback.classic.Level.WARN);
        java.io.PrintStream story = json ? System.err : System.out;
        DemoScenario scenario = new DemoScenario(dir, story, points);
        if (encrypt) {
            byte[] random = new byte[24];
            new java.security.SecureRandom().nextBytes(random);
            scenario.encrypted(java.util.Base64.getEncoder().encodeToString(random));
            story.println("repositories encrypted; the passphrase is in " + dir.resolve("secrets/passphrase"));
        }
        DemoScenario.Outcome o = scenario.run(null);
        DemoScenario.Point latest = o.latest();
        boolean ok = o.points().stream().allMatch(o::matches);
        if (json) {
            com.fasterxml.jackson.databind.node.ObjectNode summary =
                    io.tidemark.format.Json.mapper().createObjectNode();
            o.points().forEach(p -> summary.withArray("restorePoints")
                    .add(p.manifest().id()));
            summary.put("restoredFromS3", latest.manifest().id());
            com.fasterxml.jackson.databind.node.ObjectNode disks = summary.putObject("disks");
            o.restoredFromS3().get(latest.manifest().id()).forEach((disk, r) -> disks.putObject(disk)
                    .put("sha256", r.sha256())
                    .put("sha256AtSnapshot", latest.moment().sha256().get(disk)));
            summary.put("checksumsMatch", ok);
            summary.put("encrypted", encrypt);
            summary.put("seconds", (System.nanoTime() - t0) / 1e9);
            summary.put("dir", dir.toString());
            System.out.println(io.tidemark.format.Json.mapper()
                    .writerWithDefaultPrettyPrinter()
                    .writeValueAsString(summary));
            return ok ? 0 : Main.EXIT_PERMANENT;
        }
        System.out.printf(
                "restored %s from S3 alone (local repository deleted):%n",
                latest.manifest().id());
        o.restoredFromS3()
                .get(latest.manifest().id())
                .forEach((disk, r) -> System.out.printf(
                        "  %s: sha256 %s%n  %s  disk at the snapshot moment%n",
                        disk, r.sha256(), latest.moment().sha256().get(disk)));
        System.out.println(
                ok
                        ? "checksum matches: the restored image is the disk as it was at the snapshot moment"
                        : "CHECKSUM MISMATCH: the restored image differs from the disk at the snapshot moment");
        System.out.printf(
                "demo done in %.1f s; QEMU, Kafka, S3Proxy and the engine are stopped (data in %s)%n",
                (System.nanoTime() - t0) / 1e9, dir);
        return ok ? 0 : Main.EXIT_PERMANENT;
    }
}
