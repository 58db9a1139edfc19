package io.tidemark.core.hypervisor;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Optional;
import java.util.regex.Pattern;

/**
 * Whether this host can run guests under KVM. {@code /dev/kvm} alone does not tell: a nested VM
 * without nested virtualisation has the device (and QEMU's {@code query-kvm} says enabled) but its
 * guests never run, and its CPU lacks the {@code vmx}/{@code svm} flag that any host able to run
 * KVM guests has. Hence both are asked.
 */
public final class Accelerators {

    private static final Pattern VIRT_FLAG = Pattern.compile("^flags\\s*:.*\\b(vmx|svm)\\b", Pattern.MULTILINE);

    private Accelerators() {}

    /** Empty when KVM can run guests here; otherwise why not, in words for an operator. */
    public static Optional<String> whyNoKvm() {
        return whyNoKvm(Path.of("/dev/kvm"), Path.of("/proc/cpuinfo"));
    }

    static Optional<String> whyNoKvm(Path device, Path cpuinfo) {
        if (!Files.exists(device)) {
            return Optional.of(device + " does not exist (no KVM module loaded, or not a KVM-capable host)");
        }
        if (!Files.isReadable(device) || !Files.isWritable(device)) {
            return Optional.of(device + " is not readable and writable by this user (add it to group kvm)");
        }
        try {
            if (!VIRT_FLAG.matcher(Files.readString(cpuinfo)).find()) {
                return Optional.of("the CPU has no vmx/svm flag (a nested VM without nested virtualisation):"
                        + " KVM guests would not run");
            }
        } catch (IOException e) {
            return Optional.of("cannot read " + cpuinfo + ": " + e.getMessage());
        }
        return Optional.empty();
    }

    /**
     * QEMU's accelerator arguments for {@code accel} ({@code auto}, {@code kvm} or {@code tcg}):
     * for {@code auto}, {@code -accel kvm -accel tcg} where KVM can run guests (QEMU takes the
     * first that initialises), else {@code -accel tcg}.
     */
    public static java.util.List<String> qemuArgs(String accel) {
        return switch (accel) {
            case "kvm" -> java.util.List.of("-accel", "kvm");
            case "tcg" -> java.util.List.of("-accel", "tcg");
            default ->
                whyNoKvm().isEmpty()
                        ? java.util.List.of("-accel", "kvm", "-accel", "tcg")
                        : java.util.List.of("-accel", "tcg");
        };
    }

    /** Whether {@code args} (a plan's qemu-args) choose an accelerator themselves. */
    public static boolean chooses(java.util.List<String> args) {
        for (int i = 0; i < args.size(); i++) {
            String a = args.get(i);
            if (a.equals("-accel") || a.equals("--accel") || a.equals("-enable-kvm") || a.startsWith("-accel=")) {
                return true;
            }
            if ((a.equals("-machine") || a.equals("-M"))
                    && i + 1 < args.size()
                    && args.get(i + 1).contains("accel=")) {
                return true;
            }
        }
        return false;
    }
}
