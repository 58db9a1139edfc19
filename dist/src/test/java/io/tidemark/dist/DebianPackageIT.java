package io.tidemark.dist;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import java.io.IOException;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFileAttributes;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * Installs the Debian package that {@code mvn package} built on this machine with {@code dpkg -i}, checks
 * what it installed (user, modes, units with {@code systemd-analyze}), starts the engine from the
 * installed files as {@code tidemark.service} would (its User, Group, WorkingDirectory, Environment
 * and ExecStart; no new privileges, an empty capability bounding set, UMask 0027, and its file-system
 * sandbox in a mount namespace: ProtectSystem=strict with ReadWritePaths, ProtectHome, PrivateTmp), awaits
 * {@code /readyz}, stops it with SIGTERM and purges the package ({@code dpkg -P}), leaving the machine as
 * it was. Needs root, dpkg and systemd-analyze (deploy/install-deps.sh); PID 1 need not be systemd.
 */
class DebianPackageIT {

    static final Path TARGET = Path.of("target");
    static final List<String> UNITS =
            List.of("tidemark", "tidemark-worker", "tidemark-scheduler", "tidemark-replicator");
    /** systemd-analyze security's 0-100 scale (its "exposure level" times 10); the units score 12-14 today. */
    static final int EXPOSURE_THRESHOLD = 20;

    Process engine;
    boolean installed;

    @BeforeEach
    void requireRootAndNoInstalledTidemark() {
        assertThat(Sh.run("id", "-u").ok().out().trim())
                .as("dpkg -i needs root (CI and the developers' machines run as root)")
                .isEqualTo("0");
        assertThat(Sh.run("dpkg-query", "-W", "-f=${Status}", "tidemark").out())
                .as("a tidemark package is already installed here; this test installs and purges its own:"
                        + " remove it first (dpkg -P tidemark)")
                .doesNotContain("installed");
        assertThat(Sh.run("getent", "passwd", "tidemark").rc())
                .as("a user tidemark already exists; this test creates and removes its own")
                .isNotZero();
    }

    @AfterEach
    void stopAndPurge() {
        if (engine != null && engine.isAlive()) {
            engine.destroyForcibly();
        }
        if (installed) {
            dpkg("-P", "tidemark");
        }
    }

    @Test
    void installsStartsTheEngineAsTheUnitWouldAndPurgesClean() throws Exception {
        dpkg("-i", deb().toString());
        installed = true;

        // what the package installed, with which owners and modes
        assertThat(Sh.run("getent", "passwd", "tidemark").ok().out())
                .contains(":/var/lib/tidemark:")
                .contains("/usr/sbin/nologin");
        assertMode(Path.of("/etc/tidemark"), "root", "tidemark", "rwxr-x---");
        assertMode(Path.of("/etc/tidemark/tidemark.yaml"), "root", "tidemark", "rw-r-----");
        assertMode(Path.of("/etc/tidemark/policies"), "root", "tidemark", "rwxr-x---");
        assertMode(Path.of("/etc/default/tidemark"), "root", "tidemark", "rw-r-----");
        assertMode(Path.of("/var/lib/tidemark"), "tidemark", "tidemark", "rwxr-x---");
        assertMode(Path.of("/run/tidemark/qmp"), "root", "tidemark", "rwxrwx---");
        assertThat(Files.isExecutable(Path.of("/usr/bin/tidemark"))).isTrue();
        assertThat(Sh.run("dpkg-query", "-W", "-f=${Conffiles}", "tidemark")
                        .ok()
                        .out())
                .contains("/etc/tidemark/tidemark.yaml")
                .contains("/etc/default/tidemark");
        // postinst again (dpkg-reconfigure, an upgrade): idempotent
        Sh.run("/var/lib/dpkg/info/tidemark.postinst", "configure").ok();
        assertMode(Path.of("/var/lib/tidemark"), "tidemark", "tidemark", "rwxr-x---");

        // the units: known keys only, and hardened
        for (String unit : UNITS) {
            Path file = Path.of("/lib/systemd/system/" + unit + ".service");
            Sh verify = Sh.run("systemd-analyze", "verify", file.toString());
            assertThat(verify.rc()).as(unit + ": " + verify.err()).isZero();
            assertThat(verify.err()).as(unit).doesNotContain("Unknown key", "Unknown section", "ignoring");
            Sh security = Sh.run(
                    "systemd-analyze",
                    "security",
                    "--offline=yes",
                    "--threshold=" + EXPOSURE_THRESHOLD,
                    file.toString());
            Matcher level = Pattern.compile("Overall exposure level for \\S+: ([0-9.]+)")
                    .matcher(security.out());
            assertThat(level.find()).as(security.out()).isTrue();
            System.out.printf("systemd-analyze security %s: exposure %s%n", unit, level.group(1));
            assertThat(security.rc())
                    .as(unit + " exposure " + level.group(1) + " above " + EXPOSURE_THRESHOLD / 10.0)
                    .isZero();
        }

        // bash completion knows the commands
        Sh completion = Sh.run(
                "bash",
                "-c",
                "source /usr/share/bash-completion/completions/tidemark; COMP_WORDS=(tidemark ru); COMP_CWORD=1;"
                        + " COMP_LINE='tidemark ru'; COMP_POINT=11; _complete_tidemark tidemark ru tidemark;"
                        + " printf '%s\\n' \"${COMPREPLY[@]}\"");
        assertThat(completion.ok().out().lines()).contains("run");

        // a minimal config: the primary (file) repository under /var/lib/tidemark, no VMs, loopback metrics
        int port = freeLoopbackPort();
        Files.writeString(
                Path.of("/etc/tidemark/tidemark.yaml"),
                """
                host: pkgtest
                data: /var/lib/tidemark
                kafka: ""
                qmpDir: /run/tidemark/qmp
                policies: /etc/tidemark/policies
                metrics: 127.0.0.1:%d
                """
                        .formatted(port));

        Map<String, String> unit = readService(Path.of("/lib/systemd/system/tidemark.service"));
        Path log = TARGET.resolve("debian-package-it-engine.log").toAbsolutePath();
        engine = startAsTheUnitWould(unit, log);
        long pid = engine.pid();

        HttpClient http =
                HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(2)).build();
        HttpRequest readyz = HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + port + "/readyz"))
                .timeout(Duration.ofSeconds(5))
                .build();
        long started = System.nanoTime();
        String[] body = new String[1];
        await().atMost(Duration.ofMinutes(4))
                .pollInterval(Duration.ofSeconds(1))
                .ignoreExceptionsMatching(e -> e instanceof IOException)
                .until(() -> {
                    if (!engine.isAlive()) {
                        throw new AssertionError(
                                "the engine exited with " + engine.exitValue() + ":\n" + Files.readString(log));
                    }
                    HttpResponse<String> r = http.send(readyz, HttpResponse.BodyHandlers.ofString());
                    body[0] = r.body();
                    return r.statusCode() == 200;
                });
        System.out.printf(
                "engine from the installed package ready after %.1f s: %s%n",
                (System.nanoTime() - started) / 1e9, body[0]);
        assertThat(body[0]).contains("\"ready\":true");

        // it runs as tidemark, without capabilities or a way to gain them
        String status = Files.readString(Path.of("/proc/" + pid + "/status"));
        String uid = Sh.run("id", "-u", "tidemark").ok().out().trim();
        assertThat(status).containsPattern("(?m)^Uid:\\s+" + uid + "\\s+" + uid + "\\s+" + uid);
        assertThat(status).containsPattern("(?m)^CapBnd:\\s+0+$");
        assertThat(status).containsPattern("(?m)^NoNewPrivs:\\s+1$");
        // in the unit's file-system sandbox: the system read-only, its state directory writable, /tmp its own
        List<String> mounts = Files.readAllLines(Path.of("/proc/" + pid + "/mounts"));
        assertThat(mounts).anyMatch(m -> m.matches("\\S+ / \\S+ ro,.*"));
        assertThat(mounts).anyMatch(m -> m.matches("\\S+ /var/lib/tidemark \\S+ rw,.*"));
        assertThat(mounts).anyMatch(m -> m.matches("tmpfs /tmp tmpfs rw,.*"));
        // every port it listens on is on loopback (metrics, embedded broker and its controller)
        List<String> listening = Sh.run("ss", "-ltnpH")
                .ok()
                .out()
                .lines()
                .filter(l -> l.contains("pid=" + pid + ","))
                .map(l -> l.trim().split("\\s+")[3].replace("[::ffff:127.0.0.1]", "127.0.0.1"))
                .toList();
        System.out.println("engine listens on " + listening);
        assertThat(listening).contains("127.0.0.1:" + port).allMatch(a -> a.startsWith("127.0.0.1:"));
        // what it wrote belongs to tidemark and is not readable by others (UMask=0027)
        Path repoConfig = Path.of("/var/lib/tidemark/repo/config");
        assertThat(repoConfig).exists();
        assertThat(Files.getOwner(repoConfig).getName()).isEqualTo("tidemark");
        assertThat(PosixFilePermissions.toString(Files.getPosixFilePermissions(repoConfig)))
                .endsWith("---");

        // SIGTERM, as systemctl stop sends it
        engine.destroy();
        assertThat(engine.waitFor(120, TimeUnit.SECONDS))
                .as("the engine stops on SIGTERM within the unit's TimeoutStopSec")
                .isTrue();
        assertThat(engine.exitValue()).as(Files.readString(log)).isIn(0, 143);
        assertThat(unit.get("SuccessExitStatus")).isEqualTo("143");

        dpkg("-P", "tidemark");
        installed = false;
        assertThat(Sh.run("getent", "passwd", "tidemark").rc()).isNotZero();
        assertThat(Sh.run("getent", "group", "tidemark").rc()).isNotZero();
        for (String gone : List.of(
                "/etc/tidemark",
                "/var/lib/tidemark",
                "/run/tidemark",
                "/etc/default/tidemark",
                "/usr/bin/tidemark",
                "/usr/share/tidemark",
                "/lib/systemd/system/tidemark.service",
                "/usr/share/bash-completion/completions/tidemark")) {
            assertThat(Path.of(gone)).as("left after dpkg -P").doesNotExist();
        }
    }

    @Test
    void purgeKeepsTheDataDirectoryAndUserWhenTheRepositoryHoldsBackups() throws Exception {
        dpkg("-i", deb().toString());
        installed = true;
        Path manifest = Path.of("/var/lib/tidemark/repo/manifests/web-1/20261207T000000.000Z-abcdef.json");
        Files.createDirectories(manifest.getParent());
        Files.writeString(manifest, "{}");
        try {
            Sh purge = dpkg("-P", "tidemark");
            installed = false;
            assertThat(purge.err()).contains("kept /var/lib/tidemark");
            assertThat(manifest).exists();
            assertThat(Sh.run("getent", "passwd", "tidemark").rc()).isZero();
            assertThat(Path.of("/etc/tidemark")).doesNotExist();
        } finally {
            // what an operator does by hand once the backups are no longer needed
            Sh.run("rm", "-rf", "/var/lib/tidemark");
            Sh.run("userdel", "tidemark");
            Sh.run("groupdel", "tidemark");
        }
        assertThat(Sh.run("getent", "passwd", "tidemark").rc()).isNotZero();
    }

    /** ExecStart of the unit, run as its User/Group with its Environment and WorkingDirectory. */
    static Process startAsTheUnitWould(Map<String, String> unit, Path log) throws IOException {
        List<String> command = new ArrayList<>(List.of(
                "unshare",
                "--mount",
                "--propagation",
                "private",
                "/bin/sh",
                "-c",
                sandbox(unit),
                "sh",
                "setpriv",
                "--reuid=" + unit.get("User"),
                "--regid=" + unit.get("Group"),
                "--init-groups",
                "--no-new-privs",
                "--bounding-set=-all",
                "--inh-caps=-all",
                "--"));
        command.addAll(Arrays.asList(unit.get("ExecStart").split("\\s+")));
        ProcessBuilder pb = new ProcessBuilder(command)
                .directory(Path.of(unit.get("WorkingDirectory")).toFile())
                .redirectErrorStream(true)
                .redirectOutput(log.toFile())
                .redirectInput(ProcessBuilder.Redirect.from(new java.io.File("/dev/null")));
        Map<String, String> env = pb.environment();
        env.clear();
        env.put("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
        env.put("LANG", "C.UTF-8");
        env.put("HOME", "/var/lib/tidemark");
        env.put("USER", unit.get("User"));
        env.put("LOGNAME", unit.get("User"));
        for (String assignment : unit.getOrDefault("Environment", "").split("\n")) {
            putAssignment(env, assignment);
        }
        for (String file : unit.getOrDefault("EnvironmentFile", "").split("\n")) {
            Path f = Path.of(file.startsWith("-") ? file.substring(1) : file);
            if (!file.isEmpty() && Files.exists(f)) {
                Files.readAllLines(f).stream()
                        .filter(l -> !l.isBlank() && !l.startsWith("#"))
                        .forEach(l -> putAssignment(env, l));
            }
        }
        return pb.start();
    }

    /**
     * The part of the unit's file-system sandbox that a mount namespace can give without systemd:
     * ProtectSystem=strict (every mount read-only but /proc, /sys, /dev and ReadWritePaths),
     * ProtectHome=yes (/home, /root, /run/user empty and inaccessible), PrivateTmp=yes (/tmp and
     * /var/tmp fresh), then UMask. The system-call filter, address families and the other settings
     * need systemd itself: systemd-analyze checks them, this test does not exercise them.
     */
    static String sandbox(Map<String, String> unit) {
        assertThat(unit.get("ProtectSystem")).isEqualTo("strict");
        assertThat(unit.get("ProtectHome")).isEqualTo("yes");
        assertThat(unit.get("PrivateTmp")).isEqualTo("yes");
        String readWrite = unit.get("ReadWritePaths").replace('\n', ' ');
        return String.join(
                "\n",
                "set -e",
                "for rw in " + readWrite + "; do mount --bind \"$rw\" \"$rw\"; done",
                "for mp in $(awk '{print $2}' /proc/self/mounts | sort -u); do",
                "  case \"$mp\" in /proc|/proc/*|/sys|/sys/*|/dev|/dev/*) continue;; esac",
                "  for rw in " + readWrite + "; do [ \"$mp\" = \"$rw\" ] && continue 2; done",
                "  mount -o remount,bind,ro \"$mp\"",
                "done",
                "for home in /home /root /run/user; do",
                "  if [ -d \"$home\" ]; then mount -t tmpfs -o mode=000 tmpfs \"$home\"; fi",
                "done",
                "mount -t tmpfs -o mode=1777 tmpfs /tmp",
                "mount -t tmpfs -o mode=1777 tmpfs /var/tmp",
                "umask " + unit.get("UMask"),
                "exec \"$@\"");
    }

    private static void putAssignment(Map<String, String> env, String assignment) {
        String a = unquote(assignment.trim());
        int eq = a.indexOf('=');
        if (eq > 0) {
            env.put(a.substring(0, eq).trim(), unquote(a.substring(eq + 1).trim()));
        }
    }

    /**
     * Without the double quotes systemd lets around a whole assignment ({@code Environment="K=a b"}) or an
     * EnvironmentFile value ({@code K="a b"}).
     */
    static String unquote(String s) {
        return s.length() >= 2 && s.startsWith("\"") && s.endsWith("\"") ? s.substring(1, s.length() - 1) : s;
    }

    /** The [Service] section's settings; a key given several times keeps every value, one a line. */
    static Map<String, String> readService(Path unit) throws IOException {
        Map<String, String> settings = new LinkedHashMap<>();
        boolean service = false;
        for (String line : Files.readAllLines(unit)) {
            if (line.startsWith("[")) {
                service = line.equals("[Service]");
            } else if (service && !line.isBlank() && !line.startsWith("#")) {
                int eq = line.indexOf('=');
                settings.merge(line.substring(0, eq), line.substring(eq + 1), (a, b) -> a + "\n" + b);
            }
        }
        return settings;
    }

    static Path deb() throws IOException {
        try (Stream<Path> files = Files.list(TARGET)) {
            return files.filter(p -> p.getFileName().toString().matches("tidemark_.*_all\\.deb"))
                    .findFirst()
                    .orElseThrow(() -> new AssertionError("no tidemark_*_all.deb in " + TARGET.toAbsolutePath()
                            + ": `mvn package` in dist/ builds it (deploy/debian/build-deb.sh)"))
                    .toAbsolutePath();
        }
    }

    /** dpkg, waiting while another dpkg or apt (an engineer's install) holds its lock. */
    static Sh dpkg(String... args) {
        List<String> command = new ArrayList<>(List.of("dpkg"));
        command.addAll(List.of(args));
        Sh[] result = new Sh[1];
        await().atMost(Duration.ofMinutes(10))
                .pollInterval(Duration.ofSeconds(2))
                .until(() -> {
                    result[0] = Sh.run(command);
                    return result[0].rc() == 0 || !result[0].err().contains("lock");
                });
        return result[0].ok();
    }

    static void assertMode(Path path, String owner, String group, String permissions) throws IOException {
        PosixFileAttributes a = Files.readAttributes(path, PosixFileAttributes.class);
        assertThat(a.owner().getName() + ":" + a.group().getName() + " "
                        + PosixFilePermissions.toString(a.permissions()))
                .as(path.toString())
                .isEqualTo(owner + ":" + group + " " + permissions);
    }

    static int freeLoopbackPort() throws IOException {
        try (ServerSocket s = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
            return s.getLocalPort();
        }
    }
}
