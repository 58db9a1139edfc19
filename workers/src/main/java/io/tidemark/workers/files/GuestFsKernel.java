package io.tidemark.workers.files;

import io.tidemark.core.PermanentException;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.stream.Stream;

/**
 * Where libguestfs's appliance gets its Linux kernel. supermin looks in {@code /boot} (Debian's
 * linux-image-amd64); without one, {@code deploy/guest/guestfs-kernel.sh} unpacks Debian's kernel
 * package into {@code ~/.cache/tidemark/guest/guestfs-kernel} (no install, no initramfs build) and
 * this class hands it to supermin through {@code SUPERMIN_KERNEL}, {@code SUPERMIN_MODULES} and
 * {@code SUPERMIN_KERNEL_VERSION}.
 *
 * <p>Order: the {@code SUPERMIN_KERNEL} of the environment, else {@code TIDEMARK_GUESTFS_KERNEL}
 * (a directory the script made), else {@code /boot/vmlinuz-*}, else the script's default
 * directory. {@code LIBGUESTFS_BACKEND} defaults to {@code direct} (no libvirtd needed).
 */
public final class GuestFsKernel {

    /** The environment variable naming a directory made by {@code deploy/guest/guestfs-kernel.sh}. */
    public static final String ENV = "TIDEMARK_GUESTFS_KERNEL";

    private GuestFsKernel() {}

    /**
     * The environment to add to guestfish's.
     *
     * @throws PermanentException no kernel can be found: says what to install or run
     */
    public static Map<String, String> environment() {
        return environment(System.getenv(), Path.of("/boot"), defaultDir());
    }

    static Map<String, String> environment(Map<String, String> env, Path boot, Path defaultDir) {
        Map<String, String> out = new LinkedHashMap<>();
        if (!env.containsKey("LIBGUESTFS_BACKEND")) {
            out.put("LIBGUESTFS_BACKEND", "direct");
        }
        if (env.containsKey("SUPERMIN_KERNEL")) {
            return out;
        }
        String named = env.get(ENV);
        if (named != null) {
            out.putAll(
                    fromDir(Path.of(named))
                            .orElseThrow(
                                    () -> new PermanentException(
                                            ENV + "=" + named + " is not a kernel directory made by"
                                                    + " deploy/guest/guestfs-kernel.sh (no 'ready' file); run deploy/guest/guestfs-kernel.sh")));
            return out;
        }
        if (hasBootKernel(boot)) {
            return out;
        }
        out.putAll(fromDir(defaultDir)
                .orElseThrow(() -> new PermanentException("libguestfs needs a Linux kernel for its appliance and"
                        + " there is none in " + boot + " nor in " + defaultDir + ": run"
                        + " deploy/guest/guestfs-kernel.sh (unpacks Debian's kernel package, installs nothing) or"
                        + " install linux-image-amd64")));
        return out;
    }

    static Path defaultDir() {
        return Path.of(System.getProperty("user.home"), ".cache", "tidemark", "guest", "guestfs-kernel");
    }

    private static boolean hasBootKernel(Path boot) {
        try (Stream<Path> s = Files.list(boot)) {
            return s.anyMatch(p -> p.getFileName().toString().startsWith("vmlinuz-"));
        } catch (IOException e) {
            return false;
        }
    }

    private static java.util.Optional<Map<String, String>> fromDir(Path dir) {
        try {
            Path ready = dir.resolve("ready");
            if (!Files.isRegularFile(ready)) {
                return java.util.Optional.empty();
            }
            String version = Files.readString(ready).strip();
            Map<String, String> m = new LinkedHashMap<>();
            m.put(
                    "SUPERMIN_KERNEL",
                    dir.resolve("boot").resolve("vmlinuz-" + version).toString());
            m.put(
                    "SUPERMIN_MODULES",
                    dir.resolve("lib/modules").resolve(version).toString());
            m.put("SUPERMIN_KERNEL_VERSION", version);
            return java.util.Optional.of(m);
        } catch (IOException e) {
            return java.util.Optional.empty();
        }
    }
}
