package io.tidemark.workers.libvirt;

import io.tidemark.core.files.FileTrees;
import io.tidemark.core.hypervisor.Capture;
import io.tidemark.core.hypervisor.CaptureRequest;
import io.tidemark.core.hypervisor.Hypervisor;
import io.tidemark.testkit.libvirt.LibvirtDomain;
import io.tidemark.testkit.libvirt.Libvirtd;
import io.tidemark.testkit.qemu.QemuVm;
import io.tidemark.workers.NbdExports;
import io.tidemark.workers.qmp.QmpHypervisor;
import java.io.IOException;
import java.lang.management.ManagementFactory;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Optional;
import java.util.function.BiConsumer;

/**
 * The price of capturing through libvirt instead of QMP directly: the same VM shape (q35/TCG, two
 * 64 MiB qcow2 v3 disks with 16 MiB of data each) once as a {@link QemuVm} behind {@link
 * QmpHypervisor} and once as a libvirt domain behind {@link LibvirtHypervisor}, in the same run.
 * Each round writes 64 KiB to each disk of both VMs, then, in alternating order, times per adapter
 * an incremental capture (until {@code capture()} returns, exports ready), reads one dirty bitmap
 * over NBD (so the export is really used), and the commit + close. Prints p50/p90 and the libvirt /
 * QMP ratio. A {@code main} in test scope, not a test: nothing asserts on time.
 *
 * <p>Settings: {@code -Dbench.rounds=30}.
 */
public final class CaptureBench {

    private static final long MIB = 1 << 20;

    private CaptureBench() {}

    public static void main(String[] args) throws Exception {
        int rounds = Integer.getInteger("bench.rounds", 30);
        Path root = Files.createTempDirectory("tm-cb");
        Files.createDirectories(root.resolve("q"));
        double loadStart = load();
        long t0 = System.nanoTime();
        try (QemuVm q = QemuVm.start(root.resolve("q"), "bq", 64 * MIB, 64 * MIB);
                QmpHypervisor qmp = new QmpHypervisor(root.resolve("q"));
                Libvirtd daemon = Libvirtd.start(root.resolve("l"));
                LibvirtDomain l = daemon.startDomain("bl", 64 * MIB, 64 * MIB);
                LibvirtHypervisor lv = new LibvirtHypervisor(daemon.uri())) {
            for (String d : q.diskIds()) {
                q.write(d, 0, (int) (16 * MIB), 0x11);
            }
            for (String d : l.disks()) {
                l.write(d, 0, (int) (16 * MIB), 0x11);
            }
            Timing qt = new Timing("QMP (QmpHypervisor)");
            Timing lt = new Timing("libvirt (LibvirtHypervisor)");
            // round 0 is the warm-up and the baseline full capture of each
            for (int i = 0; i <= rounds; i++) {
                int round = i;
                BiConsumer<String, Integer> writeQ = (d, n) -> q.write(d, (16 + n) * MIB, 65536, 0x20 + n);
                BiConsumer<String, Integer> writeL = (d, n) -> l.write(d, (16 + n) * MIB, 65536, 0x20 + n);
                for (String d : q.diskIds()) {
                    writeQ.accept(d, round % 40);
                }
                for (String d : l.disks()) {
                    writeL.accept(d, round % 40);
                }
                if (round % 2 == 0) {
                    capture(qmp, "bq", root, round, round == 0 ? null : qt);
                    capture(lv, "bl", root, round, round == 0 ? null : lt);
                } else {
                    capture(lv, "bl", root, round, lt);
                    capture(qmp, "bq", root, round, qt);
                }
            }
            System.out.printf("%d rounds, 2 disks per VM, incremental captures with 64 KiB changed per disk%n", rounds);
            System.out.printf(
                    "%-30s %12s %12s %12s %12s%n", "adapter (ms)", "open p50", "open p90", "close p50", "close p90");
            qt.print();
            lt.print();
            System.out.printf(
                    "libvirt / QMP: open %.2fx, close %.2fx, open+close %.2fx (p50)%n",
                    lt.p(lt.open, 50) / qt.p(qt.open, 50),
                    lt.p(lt.close, 50) / qt.p(qt.close, 50),
                    lt.p(lt.total(), 50) / qt.p(qt.total(), 50));
        }
        System.out.printf(
                "duration %.1f s, 1-min load average %.1f at start, %.1f at end%n",
                (System.nanoTime() - t0) / 1e9, loadStart, load());
        FileTrees.delete(root);
    }

    private static void capture(Hypervisor hv, String vm, Path root, int round, Timing t) throws IOException {
        Path work = Files.createDirectories(root.resolve("w-" + vm + "-" + round));
        CaptureRequest r = new CaptureRequest(
                vm, round == 0 ? Optional.empty() : Optional.of("tm-" + (round - 1)), "tm-" + round, work);
        long a = System.nanoTime();
        Capture c = hv.capture(r);
        long b = System.nanoTime();
        if (round > 0 && NbdExports.dirtyExtents(c.disks().get(0)).isEmpty()) {
            throw new IllegalStateException(vm + ": round " + round + " sees no change");
        }
        long x = System.nanoTime();
        c.commit();
        c.close();
        long y = System.nanoTime();
        if (t != null) {
            t.open.add((b - a) / 1e6);
            t.close.add((y - x) / 1e6);
        }
    }

    private static double load() {
        return ManagementFactory.getOperatingSystemMXBean().getSystemLoadAverage();
    }

    private static final class Timing {
        final String name;
        final List<Double> open = new ArrayList<>();
        final List<Double> close = new ArrayList<>();

        Timing(String name) {
            this.name = name;
        }

        List<Double> total() {
            List<Double> out = new ArrayList<>();
            for (int i = 0; i < open.size(); i++) {
                out.add(open.get(i) + close.get(i));
            }
            return out;
        }

        double p(List<Double> values, int percentile) {
            List<Double> s = new ArrayList<>(values);
            Collections.sort(s);
            return s.get(Math.min(s.size() - 1, (int) Math.ceil(percentile / 100.0 * s.size()) - 1));
        }

        void print() {
            System.out.printf(
                    "%-30s %12.1f %12.1f %12.1f %12.1f%n", name, p(open, 50), p(open, 90), p(close, 50), p(close, 90));
        }
    }
}
