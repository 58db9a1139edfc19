package io.tidemark.demo.bench;

import com.fasterxml.jackson.databind.JsonNode;
import io.tidemark.core.PermanentException;
import io.tidemark.core.RetriableException;
import io.tidemark.core.event.FullReason;
import io.tidemark.core.hypervisor.Capture;
import io.tidemark.core.hypervisor.CaptureRequest;
import io.tidemark.core.hypervisor.DiskExport;
import io.tidemark.core.hypervisor.DiskInfo;
import io.tidemark.core.hypervisor.Hypervisor;
import io.tidemark.core.hypervisor.VmInfo;
import io.tidemark.core.process.ExternalCommand;
import io.tidemark.format.Json;
import java.io.IOException;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.channels.SocketChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Instant;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.LockSupport;

/**
 * A {@link Hypervisor} of powered-off "VMs" whose disks are qcow2 images: a capture exports each
 * image read-only with {@code qemu-nbd} (with {@code -B <since>} for the dirty bitmap of an
 * incremental) and adds the new checkpoint as a persistent bitmap with {@code qemu-img bitmap}, so
 * later writes through QEMU's block layer ({@code qemu-io}) are tracked. It reads the same NBD as a
 * live VM's export, without a guest competing for the two cores: the benchmark's stand-in.
 */
final class ImageHypervisor implements Hypervisor {

    private final Clock clock;
    private final Map<String, Map<String, Path>> vms = new LinkedHashMap<>();

    ImageHypervisor(Clock clock) {
        this.clock = clock;
    }

    /** Adds disk {@code disk} of VM {@code vm}: a qcow2 (v3) image. */
    synchronized void add(String vm, String disk, Path qcow2) {
        vms.computeIfAbsent(vm, v -> new LinkedHashMap<>()).put(disk, qcow2.toAbsolutePath());
    }

    @Override
    public synchronized List<VmInfo> list() {
        List<VmInfo> out = new ArrayList<>();
        vms.forEach((vm, disks) -> out.add(new VmInfo(
                vm,
                disks.entrySet().stream()
                        .map(d -> new DiskInfo(d.getKey(), d.getKey(), virtualSize(d.getValue())))
                        .toList())));
        return out;
    }

    @Override
    public synchronized Capture capture(CaptureRequest request) {
        Map<String, Path> disks = vms.get(request.vm());
        if (disks == null) {
            throw new PermanentException("no image VM '" + request.vm() + "'; known: " + vms.keySet());
        }
        Instant at = clock.instant();
        List<DiskExport> exports = new ArrayList<>();
        List<Process> servers = new ArrayList<>();
        List<Path> images = new ArrayList<>();
        List<Boolean> incremental = new ArrayList<>();
        try {
            int i = 0;
            for (Map.Entry<String, Path> d : disks.entrySet()) {
                Path image = d.getValue();
                JsonNode info = info(image);
                boolean inc = request.sinceCheckpoint().isPresent()
                        && bitmaps(info).contains(request.sinceCheckpoint().get());
                // the granularity the QMP capture uses (ADR 15), not qemu-img's default (the 64 KiB cluster)
                Tools.run(
                        "qemu-img",
                        "bitmap",
                        "--add",
                        "--enable",
                        "-g",
                        "16384",
                        image.toString(),
                        request.newCheckpoint());
                Path socket = request.workDir().toAbsolutePath().resolve("nbd-" + i++ + ".sock");
                List<String> cmd = new ArrayList<>(List.of(
                        "qemu-nbd", "-r", "-t", "-e", "8", "-f", "qcow2", "-x", d.getKey(), "-k", socket.toString()));
                if (inc) {
                    cmd.addAll(List.of("-B", request.sinceCheckpoint().get()));
                }
                cmd.add(image.toString());
                servers.add(start(cmd, socket));
                images.add(image);
                incremental.add(inc);
                exports.add(new DiskExport(
                        d.getKey(),
                        info.path("virtual-size").asLong(),
                        socket,
                        d.getKey(),
                        inc
                                ? Optional.of("qemu:dirty-bitmap:"
                                        + request.sinceCheckpoint().get())
                                : Optional.empty(),
                        inc
                                ? Optional.empty()
                                : Optional.of(request.sinceCheckpoint()
                                        .map(s -> FullReason.of(
                                                FullReason.Kind.CHECKPOINT_MISSING,
                                                "checkpoint " + s + " missing in " + image))
                                        .orElse(FullReason.of(
                                                FullReason.Kind.FIRST_BACKUP,
                                                "first backup: there is no parent checkpoint"))),
                        Optional.empty()));
            }
        } catch (RuntimeException e) {
            servers.forEach(ImageHypervisor::stop);
            throw e;
        }
        return new Capture() {
            private boolean committed;

            @Override
            public Instant capturedAt() {
                return at;
            }

            @Override
            public List<DiskExport> disks() {
                return exports;
            }

            @Override
            public void commit() {
                committed = true;
            }

            @Override
            public void close() {
                servers.forEach(ImageHypervisor::stop);
                for (int k = 0; k < images.size(); k++) {
                    if (committed && incremental.get(k)) {
                        Tools.run(
                                "qemu-img",
                                "bitmap",
                                "--remove",
                                images.get(k).toString(),
                                request.sinceCheckpoint().get());
                    } else if (!committed) {
                        Tools.run(
                                "qemu-img", "bitmap", "--remove", images.get(k).toString(), request.newCheckpoint());
                    }
                }
            }
        };
    }

    private static Process start(List<String> cmd, Path socket) {
        Process p = ExternalCommand.of(cmd)
                .ifMissing("install qemu-utils")
                .start(Path.of(socket + ".log"))
                .process();
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
        while (true) {
            if (!p.isAlive()) {
                throw new PermanentException(
                        "qemu-nbd exited with " + p.exitValue() + ": " + cmd + "; see " + socket + ".log");
            }
            if (Files.exists(socket)) {
                try (SocketChannel ch = SocketChannel.open(StandardProtocolFamily.UNIX)) {
                    ch.connect(UnixDomainSocketAddress.of(socket));
                    return p;
                } catch (IOException e) {
                    // not listening yet
                }
            }
            if (System.nanoTime() > deadline) {
                stop(p);
                throw new RetriableException("qemu-nbd did not listen on " + socket + " within 30 s");
            }
            LockSupport.parkNanos(TimeUnit.MILLISECONDS.toNanos(5));
        }
    }

    private static void stop(Process p) {
        p.destroy();
        try {
            if (!p.waitFor(30, TimeUnit.SECONDS)) {
                p.destroyForcibly().waitFor(30, TimeUnit.SECONDS);
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            p.destroyForcibly();
        }
    }

    static JsonNode info(Path image) {
        try {
            return Json.mapper()
                    .readTree(Tools.run("qemu-img", "info", "--force-share", "--output=json", image.toString()));
        } catch (IOException e) {
            throw new PermanentException("qemu-img info " + image + " printed no JSON: " + e.getMessage(), e);
        }
    }

    private static long virtualSize(Path image) {
        return info(image).path("virtual-size").asLong();
    }

    private static List<String> bitmaps(JsonNode info) {
        List<String> names = new ArrayList<>();
        info.path("format-specific")
                .path("data")
                .path("bitmaps")
                .forEach(b -> names.add(b.path("name").asText()));
        return names;
    }

    @Override
    public void close() {
        // captures own their servers; nothing else is held
    }
}
