package io.tidemark.demo.bench;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.tidemark.core.bus.Topics;
import io.tidemark.core.event.Event;
import io.tidemark.core.event.JobFailed;
import io.tidemark.core.event.ReplicaCommitted;
import io.tidemark.core.event.RestorePointCreated;
import io.tidemark.core.event.RpoViolated;
import io.tidemark.core.event.SnapshotCaptured;
import io.tidemark.core.event.SnapshotJob;
import io.tidemark.core.process.ExternalCommand;
import io.tidemark.core.repository.DiskEntry;
import io.tidemark.core.repository.Manifest;
import io.tidemark.core.target.ObjectTarget;
import io.tidemark.format.EventCodec;
import io.tidemark.format.Json;
import io.tidemark.format.ObjectKeys;
import io.tidemark.repository.Repository;
import io.tidemark.repository.Restorer;
import io.tidemark.targets.S3TargetSpec;
import io.tidemark.targets.file.FileObjectTarget;
import io.tidemark.targets.s3.S3Credentials;
import io.tidemark.targets.s3.S3ObjectTarget;
import io.tidemark.testkit.fault.FaultyHttpProxy;
import io.tidemark.testkit.qemu.QemuVm;
import io.tidemark.testkit.s3.EmbeddedS3;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.attribute.PosixFilePermissions;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashMap;
import java.util.HashSet;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;
import java.util.Properties;
import java.util.Random;
import java.util.Set;
import java.util.TreeMap;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.LockSupport;
import java.util.function.Consumer;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.common.PartitionInfo;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;

/**
 * The day-two soak: operates the engine like production and checks what it left behind.
 *
 * <p>Parts, all real: the engine as a child JVM ({@code Main run}, embedded KRaft broker and file
 * repository in its data directory), one S3 target (S3Proxy) behind a {@link FaultyHttpProxy}, and
 * several QEMU VMs (TCG) whose disks the soak writes through the guest devices while keeping its
 * own model of their content ({@link SoakModel}). Faults, at random moments chosen by a seeded
 * {@link Random}: SIGTERM and SIGKILL of the engine (aimed at a capture, an export, just after a
 * commit, a replication request in flight, a running {@code gc}), the embedded broker killed, the
 * target refusing every request for longer than its retry deadline, a VM stopped with SIGSTOP, a
 * QMP socket moved away and back, a manifest truncated.
 *
 * <p>At the end it reads the engine's topics and repositories and checks: every firing produced one
 * restore point or a JobFailed with a reason; no point is half-visible; every point is on the
 * target; every point restores bit-identically (from the primary and from the target) to a state
 * the soak's model says the disks held at its capture moment; every VM that missed its RPO got an
 * RpoViolated; nothing is left behind. Each failed check is one line of {@link Result#failures()}.
 */
public final class Soak {

    private static final String HOST = "soak-host";
    private static final String POLICY = "soak";
    private static final String TARGET = "offsite";
    private static final String BUCKET = "tidemark-soak";
    private static final Duration DRAIN = Duration.ofSeconds(60);
    private static final Duration CAPTURE_SLACK = Duration.ofSeconds(1);
    private static final Pattern ERROR_LINE =
            Pattern.compile("(?m)^\\S+ (ERROR|WARN) +(?:\\[[^\\]]*\\] )?(\\S+) - (.*)$");

    /**
     * @param dir work directory (kept short: Unix socket paths)
     * @param kills engine restarts/kills to do
     * @param minDuration run at least this long
     * @param vms VMs (the first has two disks)
     * @param diskSize each disk's size
     * @param interval the policy's schedule
     * @param rpo the policy's RPO (local and target)
     * @param retryDeadline the target's retry deadline
     * @param seed the random seed (moments, offsets, patterns)
     * @param aimWait how long a kill waits for its aimed moment (then it kills anyway); a random
     *     moment is drawn from the first half of it
     * @param baseline whether to spend a fault-free window as long as the stopped VM's just before
     *     it, so the healthy VMs' firing lag during the stop has a same-run baseline (the bench does;
     *     the suite's short variant checks and skips the figure)
     */
    public record Options(
            Path dir,
            int kills,
            Duration minDuration,
            int vms,
            long diskSize,
            Duration interval,
            Duration rpo,
            Duration retryDeadline,
            long seed,
            Duration aimWait,
            boolean baseline) {}

    /** The figures (JSON) and one line per failed check; the soak passed iff there are none. */
    public record Result(ObjectNode figures, List<String> failures) {}

    private final Options o;
    private final Consumer<String> progress;
    private final Random random;
    private final String classpath;
    private final List<PatternedVm> vms = new ArrayList<>();
    private final List<String> failures = new ArrayList<>();
    private final List<String> findings = new ArrayList<>();
    private final Map<String, Integer> killsByKind = new TreeMap<>();
    private final Map<String, Integer> killsByMoment = new TreeMap<>();
    private final Map<String, Integer> selfExits = new TreeMap<>();
    private final Set<Long> orphanCandidates = new HashSet<>();
    private final List<Process> gcRuns = new ArrayList<>();
    private final Map<String, Integer> gcOutcomes = new TreeMap<>();
    private final ObjectNode figures = Json.mapper().createObjectNode();

    private Path data;
    private Path qmpDir;
    private Path logs;
    private Path configFile;
    private EmbeddedS3 s3;
    private FaultyHttpProxy proxy;
    private SoakEngine engine;

    // fault windows
    private Instant[] baselineWindow;
    private Instant[] stuckWindow;
    private String stuckVm;
    private Instant[] outageWindow;
    private Instant[] qmpGoneWindow;
    private String qmpGoneVm;
    private String truncatedVm;
    private String truncatedId;
    private String truncatedJobId;
    private final ObjectNode catchUp = Json.mapper().createObjectNode();

    public Soak(Options options, Consumer<String> progress) {
        this.o = options;
        this.progress = progress;
        this.random = new Random(options.seed());
        this.classpath = System.getProperty("java.class.path");
    }

    public Result run() throws IOException {
        Instant began = Instant.now();
        Files.createDirectories(o.dir());
        data = o.dir().resolve("data");
        qmpDir = Files.createDirectories(o.dir().resolve("qmp"));
        logs = Files.createDirectories(o.dir().resolve("logs"));
        figures.put("startedAt", began.toString());
        figures.put("loadAverageAtStart", loadAverage());
        try (EmbeddedS3 s3Server = EmbeddedS3.builder()
                        .filesystem(Files.createDirectories(o.dir().resolve("s3")))
                        .build()
                        .start();
                FaultyHttpProxy faulty = FaultyHttpProxy.to(s3Server.endpoint())
                        .faults(FaultyHttpProxy.Fault.RESET)
                        .faultRate(0)
                        .seed(o.seed())
                        .build()
                        .start()) {
            this.s3 = s3Server;
            this.proxy = faulty;
            s3.createBucket(BUCKET);
            writeConfig();
            for (int i = 0; i < o.vms(); i++) {
                long[] sizes = i == 0 ? new long[] {o.diskSize(), o.diskSize()} : new long[] {o.diskSize()};
                vms.add(new PatternedVm(QemuVm.start(qmpDir, "vm" + i, sizes), o.seed() + i, this::writerFailed));
            }
            try {
                for (PatternedVm vm : vms) {
                    vm.startWriting("soak-writer");
                }
                engine = new SoakEngine(configFile, logs, classpath);
                engine.start();
                faultLoop(began);
                stopWriters();
                Events events = finalRun();
                check(events);
                figures.put("loadAverageAtEnd", loadAverage());
                figures.put("seconds", Duration.between(began, Instant.now()).toSeconds());
            } finally {
                vms.forEach(PatternedVm::stopWriting);
                SoakEngine.Life life = engine == null ? null : engine.current();
                if (life != null && life.alive()) {
                    engine.kill(life);
                }
                gcRuns.forEach(Process::destroyForcibly);
                for (PatternedVm vm : vms) {
                    try {
                        ProcessHandle.of(vm.qemu.pid()).ifPresent(p -> signal(p.pid(), "CONT"));
                        vm.qemu.close();
                    } catch (RuntimeException e) {
                        failures.add("QEMU of " + vm.name() + " did not stop cleanly: " + e.getMessage());
                    }
                }
            }
        }
        ArrayNode f = figures.putArray("failures");
        failures.forEach(f::add);
        ArrayNode n = figures.putArray("findings");
        findings.forEach(n::add);
        return new Result(figures, List.copyOf(failures));
    }

    // ---------------------------------------------------------------------------------------- setup

    private void writeConfig() throws IOException {
        Path secrets = Files.createDirectories(o.dir().resolve("secrets"));
        Path access = secret(secrets.resolve("s3.access"), s3.accessKey());
        Path secretKey = secret(secrets.resolve("s3.secret"), s3.secretKey());
        Path policies = Files.createDirectories(o.dir().resolve("policies"));
        StringBuilder names = new StringBuilder();
        for (int i = 0; i < o.vms(); i++) {
            names.append(i == 0 ? "" : ", ").append("vm").append(i);
        }
        Files.writeString(
                policies.resolve("soak.yaml"),
                """
                name: %s
                vms:
                  names: [%s]
                schedule:
                  interval: %ds
                rpo: %ds
                targets: [%s]
                """
                        .formatted(
                                POLICY, names, o.interval().toSeconds(), o.rpo().toSeconds(), TARGET));
        configFile = o.dir().resolve("engine.yaml");
        Files.writeString(
                configFile,
                """
                host: %s
                data: %s
                qmpDir: %s
                policies: %s
                metrics: 127.0.0.1:0
                maxConcurrentJobs: 2
                targets:
                  %s:
                    type: s3
                    endpoint: %s
                    region: %s
                    bucket: %s
                    prefix: soak
                    pathStyle: true
                    accessKeyFile: %s
                    secretKeyFile: %s
                    retryDeadline: %ds
                """
                        .formatted(
                                HOST,
                                data,
                                qmpDir,
                                policies,
                                TARGET,
                                proxy.endpoint(),
                                s3.region(),
                                BUCKET,
                                access,
                                secretKey,
                                o.retryDeadline().toSeconds()));
    }

    private static Path secret(Path file, String value) throws IOException {
        Files.writeString(file, value);
        Files.setPosixFilePermissions(file, PosixFilePermissions.fromString("rw-------"));
        return file;
    }

    // ----------------------------------------------------------------------------------- the faults

    private void faultLoop(Instant began) {
        int k = o.kills();
        int stuckAt = Math.max(1, k / 5);
        int outageAt = Math.max(2, (2 * k) / 5);
        int qmpAt = Math.max(3, (3 * k) / 5);
        int truncateAt = Math.max(4, (7 * k) / 10);
        int kills = 0;
        Instant minEnd = began.plus(o.minDuration());
        Instant outageEnds = null;
        Instant qmpBackAt = null;
        while (kills < k || Instant.now().isBefore(minEnd) || outageEnds != null || qmpBackAt != null) {
            if (kills == stuckAt && stuckWindow == null) {
                stuckVm();
            }
            if (kills == outageAt && outageWindow == null) {
                Duration outage = o.retryDeadline().multipliedBy(3).plus(o.interval());
                outageWindow = new Instant[] {Instant.now(), null};
                outageEnds = outageWindow[0].plus(outage);
                proxy.faultRate(1.0);
                progress.accept("target " + TARGET + " down (every request reset) for " + outage.toSeconds()
                        + " s, retry deadline " + o.retryDeadline().toSeconds() + " s");
            }
            if (outageEnds != null && Instant.now().isAfter(outageEnds)) {
                proxy.faultRate(0);
                outageWindow[1] = Instant.now();
                outageEnds = null;
                progress.accept("target " + TARGET + " back; measuring its catch-up (no kills meanwhile)");
                measureCatchUp();
            }
            if (kills == qmpAt && qmpGoneWindow == null) {
                PatternedVm vm = vms.get(vms.size() - 1);
                qmpGoneVm = vm.name();
                moveQuietly(vm.qemu.qmpSocket(), away(vm.qemu.qmpSocket()));
                qmpGoneWindow = new Instant[] {Instant.now(), null};
                qmpBackAt = qmpGoneWindow[0].plus(
                        o.rpo().multipliedBy(3).dividedBy(2).plus(o.interval()));
                progress.accept("QMP socket of " + qmpGoneVm + " moved away; no kills until it is back, so the"
                        + " engine has the time to notice the missed RPO");
                ensureEngine();
                awaitEngineReady();
                sleep(Duration.between(Instant.now(), qmpBackAt));
            }
            if (qmpBackAt != null && Instant.now().isAfter(qmpBackAt)) {
                PatternedVm vm = vms.stream()
                        .filter(v -> v.name().equals(qmpGoneVm))
                        .findFirst()
                        .orElseThrow();
                moveQuietly(away(vm.qemu.qmpSocket()), vm.qemu.qmpSocket());
                qmpGoneWindow[1] = Instant.now();
                qmpBackAt = null;
                progress.accept("QMP socket of " + qmpGoneVm + " restored");
            }
            if (kills == truncateAt && truncatedId == null) {
                truncateManifest();
            }
            ensureEngine();
            int exits = selfExits.values().stream().mapToInt(Integer::intValue).sum();
            if (exits > k + 20) {
                failures.add("the engine exited by itself " + exits + " times; the soak gave up: " + selfExits);
                break;
            }
            if (killOnce(kills)) {
                kills++;
            }
            if (kills % 10 == 0) {
                progress.accept(kills + " kills, " + engine.lives().size() + " engine starts, "
                        + vms.stream().mapToLong(PatternedVm::writesDone).sum() + " writes");
            }
        }
        figures.put("kills", kills);
    }

    /** One kill at an aimed moment, then a restart; false if the engine had exited by itself. */
    private boolean killOnce(int n) {
        String kind = n % 5 == 4 ? "broker" : random.nextBoolean() ? "SIGTERM" : "SIGKILL";
        String[] aims = {"capture", "export", "commit", "replication", "gc", "any"};
        String aim = aims[random.nextInt(aims.length)];
        Process gc = null;
        if (aim.equals("gc")) {
            gc = startGc();
        }
        String moment = awaitMoment(aim, o.aimWait());
        SoakEngine.Life life = engine.current();
        if (!life.alive()) {
            engine.exited(life);
            noteSelfExit(life);
            reapGc();
            LockSupport.parkNanos(TimeUnit.SECONDS.toNanos(2));
            engine.start();
            return false;
        }
        life.process.descendants().forEach(d -> orphanCandidates.add(d.pid()));
        if (life.alive()) {
            switch (kind) {
                case "SIGTERM" -> {
                    if (!engine.terminate(life, DRAIN)) {
                        failures.add("engine life " + life.number + " did not stop within " + DRAIN.toSeconds()
                                + " s of SIGTERM (moment " + moment + "); log " + life.log);
                    }
                }
                case "broker" -> killBroker(life);
                default -> engine.kill(life);
            }
        }
        killsByKind.merge(kind, 1, Integer::sum);
        killsByMoment.merge(moment, 1, Integer::sum);
        if (gc != null && gc.isAlive() && random.nextBoolean()) {
            gc.destroyForcibly();
            gcOutcomes.merge("killed", 1, Integer::sum);
        }
        reapGc();
        LockSupport.parkNanos(TimeUnit.MILLISECONDS.toNanos(random.nextInt(1000)));
        engine.start();
        return true;
    }

    /** The embedded broker lives in the engine's JVM unless it runs as a child: kill that, else the JVM. */
    private void killBroker(SoakEngine.Life life) {
        Optional<ProcessHandle> broker = life.process
                .descendants()
                .filter(p -> p.info()
                        .commandLine()
                        .orElse("")
                        .toLowerCase(Locale.ROOT)
                        .contains("kafka"))
                .findFirst();
        if (broker.isPresent()) {
            broker.get().destroyForcibly();
            killsByKind.merge("broker (child process)", 1, Integer::sum);
            // the engine must notice and recover; then it is stopped like any other
            LockSupport.parkNanos(TimeUnit.SECONDS.toNanos(2));
            engine.terminate(life, DRAIN);
        } else {
            engine.kill(life); // the broker is in the engine's JVM: SIGKILL kills it mid-write
        }
    }

    /** Waits until the engine is at {@code aim} (or the wait ends) and names the moment reached. */
    private String awaitMoment(String aim, Duration max) {
        long deadline = System.nanoTime() + max.toNanos();
        if (aim.equals("any")) {
            // a random moment of the engine's first moments: start-up, recovery, the first jobs
            LockSupport.parkNanos(TimeUnit.MILLISECONDS.toNanos(random.nextInt((int) max.toMillis() / 2 + 1)));
            return "any (" + observedMoment() + ")";
        }
        Set<String> manifestsBefore = aim.equals("commit") ? manifestFiles() : Set.of();
        while (System.nanoTime() < deadline) {
            SoakEngine.Life life = engine.current();
            if (!life.alive()) {
                return "engine had exited";
            }
            boolean hit =
                    switch (aim) {
                        case "capture" ->
                            workFiles().stream().anyMatch(f -> f.startsWith("fleece-"))
                                    && workFiles().stream().noneMatch(f -> f.endsWith(".sock"));
                        case "export" -> workFiles().stream().anyMatch(f -> f.endsWith(".sock"));
                        case "commit" -> !manifestsBefore.containsAll(manifestFiles());
                        case "replication" -> proxy.inFlight() > 0;
                        case "gc" ->
                            gcRuns.stream().anyMatch(Process::isAlive)
                                    && random.nextInt(20) == 0; // a random moment of the gc run
                        default -> false;
                    };
            if (hit) {
                return aim;
            }
            LockSupport.parkNanos(TimeUnit.MILLISECONDS.toNanos(aim.equals("commit") ? 2 : 5));
        }
        return aim + " not reached (" + observedMoment() + ")";
    }

    private String observedMoment() {
        List<String> m = new ArrayList<>();
        List<String> work = workFiles();
        if (work.stream().anyMatch(f -> f.endsWith(".sock"))) {
            m.add("export");
        } else if (work.stream().anyMatch(f -> f.startsWith("fleece-"))) {
            m.add("capture");
        }
        if (proxy.inFlight() > 0) {
            m.add("replication");
        }
        if (gcRuns.stream().anyMatch(Process::isAlive)) {
            m.add("gc");
        }
        if (engine.current().bootstrap().isEmpty()) {
            m.add("start-up");
        }
        return m.isEmpty() ? "idle" : String.join("+", m);
    }

    private Process startGc() {
        Path log = logs.resolve(String.format("gc-%03d.log", gcRuns.size() + 1));
        Process p = ExternalCommand.of(
                        Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                        "-Xmx256m",
                        "-XX:TieredStopAtLevel=1",
                        "-cp",
                        classpath,
                        "io.tidemark.cli.Main",
                        "gc",
                        "--config",
                        configFile.toString(),
                        "--grace",
                        "10m",
                        "--json")
                .start(log)
                .process();
        gcRuns.add(p);
        return p;
    }

    private void reapGc() {
        for (int i = 0; i < gcRuns.size(); i++) {
            Process p = gcRuns.get(i);
            if (!p.isAlive() && p.exitValue() != 137 && p.exitValue() != -1) {
                String key = "exit " + p.exitValue();
                Path log = logs.resolve(String.format("gc-%03d.log", i + 1));
                if (!gcOutcomes.containsKey("reaped-" + i)) {
                    gcOutcomes.put("reaped-" + i, 0);
                    gcOutcomes.merge(key, 1, Integer::sum);
                    if (p.exitValue() != 0) {
                        findings.add("tidemark gc exited " + p.exitValue() + " (" + log + "): " + lastLines(log, 2));
                    }
                }
            }
        }
    }

    private void stuckVm() {
        PatternedVm vm = vms.get(0);
        stuckVm = vm.name();
        Duration d = o.rpo().multipliedBy(3).dividedBy(2).plus(o.interval().multipliedBy(2));
        // same-run baseline: the same length just before, with no faults
        ensureEngine();
        awaitEngineReady();
        if (o.baseline()) {
            baselineWindow = new Instant[] {Instant.now(), null};
            progress.accept("baseline window of " + d.toSeconds() + " s (no faults)");
            sleep(d);
            baselineWindow[1] = Instant.now();
        }
        vm.writes.lock();
        try {
            signal(vm.qemu.pid(), "STOP");
            stuckWindow = new Instant[] {Instant.now(), null};
            progress.accept(stuckVm + " stopped with SIGSTOP for " + d.toSeconds() + " s");
            sleep(d.multipliedBy(3).dividedBy(5));
            // lag is measured up to here; then the engine is restarted while the VM stays stopped
            stuckWindow[1] = Instant.now();
            SoakEngine.Life life = engine.current();
            if (life.alive()) {
                life.process.descendants().forEach(p -> orphanCandidates.add(p.pid()));
                if (!engine.terminate(life, DRAIN)) {
                    failures.add("engine life " + life.number + " did not stop within " + DRAIN.toSeconds()
                            + " s of SIGTERM while " + stuckVm + " was SIGSTOPped; log " + life.log);
                }
                killsByKind.merge("SIGTERM", 1, Integer::sum);
                killsByMoment.merge("VM stopped (SIGSTOP)", 1, Integer::sum);
            }
            engine.start();
            sleep(d.multipliedBy(2).dividedBy(5));
        } finally {
            signal(vm.qemu.pid(), "CONT");
            vm.writes.unlock();
        }
        progress.accept(stuckVm + " continued");
    }

    private void truncateManifest() {
        Path manifests = data.resolve("repo").resolve(ObjectKeys.MANIFESTS);
        try (ObjectTarget target = targetDirect()) {
            for (PatternedVm vm : vms) {
                Path dir = manifests.resolve(vm.name());
                if (!Files.isDirectory(dir)) {
                    continue;
                }
                List<Path> files;
                try (Stream<Path> s = Files.list(dir)) {
                    files = s.filter(p -> p.toString().endsWith(".json"))
                            .sorted()
                            .toList();
                }
                // one already on the target, not the newest (the engine may use the newest as parent)
                for (int i = files.size() - 2; i >= 0; i--) {
                    String key = ObjectKeys.MANIFESTS + vm.name() + "/"
                            + files.get(i).getFileName();
                    String id = ObjectKeys.restorePointIdOf(key);
                    if (id != null && target.exists(key)) {
                        truncatedJobId = Repository.open(new FileObjectTarget(data.resolve("repo")))
                                .manifest(vm.name(), id)
                                .map(Manifest::jobId)
                                .orElse(null);
                        byte[] bytes = Files.readAllBytes(files.get(i));
                        Files.write(files.get(i), java.util.Arrays.copyOf(bytes, bytes.length / 2));
                        truncatedVm = vm.name();
                        truncatedId = id;
                        progress.accept("truncated manifest " + files.get(i) + " to " + bytes.length / 2 + " bytes");
                        return;
                    }
                }
            }
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        findings.add("no replicated manifest to truncate was found; the truncation fault was skipped");
    }

    private void measureCatchUp() {
        ensureEngine();
        Instant backAt = outageWindow[1];
        try (ObjectTarget target = targetDirect()) {
            Repository primary = Repository.open(new FileObjectTarget(data.resolve("repo")));
            Map<String, Long> missing = new LinkedHashMap<>();
            for (Manifest m : readableManifests(primary, null).values()) {
                if (!target.exists(ObjectKeys.manifest(m.vm(), m.id()))) {
                    missing.put(m.vm() + "/" + m.id(), m.bytesNew());
                }
            }
            long bytes = missing.values().stream().mapToLong(Long::longValue).sum();
            Duration max = Duration.ofMinutes(5);
            Instant deadline = backAt.plus(max);
            Set<String> left = new HashSet<>(missing.keySet());
            while (!left.isEmpty() && Instant.now().isBefore(deadline)) {
                ensureEngine();
                left.removeIf(k -> target.exists(ObjectKeys.MANIFESTS + k + ".json"));
                LockSupport.parkNanos(TimeUnit.MILLISECONDS.toNanos(250));
            }
            double secs = Duration.between(backAt, Instant.now()).toMillis() / 1e3;
            catchUp.put("pointsMissing", missing.size());
            catchUp.put("bytesMissing", bytes);
            catchUp.put("caughtUp", left.isEmpty());
            catchUp.put("seconds", secs);
            if (!missing.isEmpty()) {
                catchUp.put("secondsPerPoint", secs / missing.size());
                catchUp.put("secondsPerGiB", bytes == 0 ? 0 : secs / (bytes / (double) (1L << 30)));
            }
            if (!left.isEmpty()) {
                failures.add("target " + TARGET + " did not catch up within " + max.toMinutes()
                        + " min of the end of its outage: " + left.size() + " of " + missing.size()
                        + " points still missing, e.g. " + left.iterator().next());
            }
        }
    }

    private void ensureEngine() {
        SoakEngine.Life life = engine.current();
        if (!life.alive()) {
            engine.exited(life);
            noteSelfExit(life);
            LockSupport.parkNanos(TimeUnit.SECONDS.toNanos(2));
            engine.start();
        }
    }

    private void noteSelfExit(SoakEngine.Life life) {
        String why = lastErrorLine(life);
        selfExits.merge("exit " + life.exitCode + ": " + normalise(why), 1, Integer::sum);
    }

    private void awaitEngineReady() {
        long deadline = System.nanoTime() + TimeUnit.MINUTES.toNanos(3);
        while (System.nanoTime() < deadline) {
            ensureEngine();
            SoakEngine.Life life = engine.current();
            if (life.logText().contains(SoakEngine.READY)) {
                return;
            }
            LockSupport.parkNanos(TimeUnit.MILLISECONDS.toNanos(100));
        }
        failures.add("the engine did not become ready within 3 min; log " + engine.current().log);
    }

    // ------------------------------------------------------------------------------ the final phase

    private void stopWriters() {
        vms.forEach(PatternedVm::stopWriting);
        vms.forEach(vm -> vm.awaitStopped(Duration.ofSeconds(60)));
    }

    private void writerFailed(String failure) {
        synchronized (failures) {
            failures.add(failure);
        }
    }

    /** Every event of the topics the checks read. */
    private record Events(
            Map<String, SnapshotJob> jobs,
            Map<String, Instant> jobPublished,
            Map<String, List<JobFailed>> failed,
            Map<String, Instant> captured,
            Map<String, Event> created,
            Map<String, Event> replicated,
            List<Event> violations,
            Instant quiesced) {}

    private Events finalRun() {
        ensureEngine();
        awaitEngineReady();
        // quiesce: the policy is reloaded with a firing a day, so what is in flight can end and be checked
        Path policy = o.dir().resolve("policies").resolve("soak.yaml");
        try {
            String text = Files.readString(policy);
            Files.writeString(policy, text.replaceFirst("interval: \\d+s", "interval: 24h"));
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        long reloadBy = System.nanoTime() + TimeUnit.MINUTES.toNanos(2);
        while (!engine.current().logText().contains("policies reloaded") && System.nanoTime() < reloadBy) {
            ensureEngineDuringFinal();
            LockSupport.parkNanos(TimeUnit.MILLISECONDS.toNanos(200));
        }
        Instant quiesced = Instant.now();
        progress.accept("final run: policy quiesced at " + quiesced + "; waiting for every job to end and for " + TARGET
                + " to hold every point");
        String bootstrap = engine.current()
                .bootstrap()
                .orElseThrow(() -> new IllegalStateException(
                        "the engine's log names no embedded broker: " + engine.current().log));
        Map<String, SnapshotJob> jobs = new LinkedHashMap<>();
        Map<String, Instant> jobPublished = new HashMap<>();
        Map<String, List<JobFailed>> failed = new HashMap<>();
        Map<String, Instant> captured = new HashMap<>();
        Map<String, Event> created = new LinkedHashMap<>();
        Map<String, Event> replicated = new LinkedHashMap<>();
        List<Event> violations = new ArrayList<>();
        Properties p = new Properties();
        p.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
        p.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
        p.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
        Duration max = Duration.ofMinutes(6).plus(o.retryDeadline().multipliedBy(2));
        long deadline = System.nanoTime() + max.toNanos();
        try (KafkaConsumer<byte[], byte[]> consumer = new KafkaConsumer<>(p)) {
            List<TopicPartition> parts = new ArrayList<>();
            for (String topic :
                    List.of(Topics.jobs(HOST), Topics.JOB_STATUS, Topics.RESTORE_POINTS, Topics.REPLICATION)) {
                List<PartitionInfo> infos = consumer.partitionsFor(topic, Duration.ofSeconds(30));
                if (infos != null) {
                    infos.forEach(i -> parts.add(new TopicPartition(i.topic(), i.partition())));
                }
            }
            consumer.assign(parts);
            consumer.seekToBeginning(parts);
            Set<String> pending = Set.of("start");
            int undecodable = 0;
            while (System.nanoTime() < deadline) {
                for (ConsumerRecord<byte[], byte[]> r : consumer.poll(Duration.ofMillis(500))) {
                    Event e;
                    try {
                        e = EventCodec.decode(r.value());
                    } catch (RuntimeException ex) {
                        undecodable++;
                        continue;
                    }
                    Object payload = e.payload();
                    if (payload instanceof SnapshotJob j) {
                        jobs.putIfAbsent(e.jobId(), j);
                        jobPublished.putIfAbsent(e.jobId(), e.time());
                    } else if (payload instanceof JobFailed f) {
                        failed.computeIfAbsent(e.jobId(), x -> new ArrayList<>())
                                .add(f);
                    } else if (payload instanceof SnapshotCaptured c) {
                        captured.putIfAbsent(e.jobId(), c.capturedAt());
                    } else if (payload instanceof RestorePointCreated c) {
                        created.putIfAbsent(c.vm() + "/" + c.restorePointId(), e);
                    } else if (payload instanceof ReplicaCommitted c) {
                        replicated.putIfAbsent(c.vm() + "/" + c.restorePointId() + "@" + c.target(), e);
                    } else if (payload instanceof RpoViolated) {
                        violations.add(e);
                    }
                }
                Set<String> done = new HashSet<>(failed.keySet());
                created.values().forEach(e -> done.add(e.jobId()));
                if (truncatedJobId != null) {
                    done.add(truncatedJobId);
                }
                pending = new HashSet<>();
                for (String j : jobs.keySet()) {
                    if (!done.contains(j)) {
                        pending.add(j);
                    }
                }
                boolean allReplicated =
                        created.keySet().stream().allMatch(k -> replicated.containsKey(k + "@" + TARGET));
                Map<TopicPartition, Long> ends = consumer.endOffsets(parts);
                boolean readAll = parts.stream().allMatch(tp -> consumer.position(tp) >= ends.get(tp));
                boolean settled =
                        Instant.now().isAfter(quiesced.plus(o.interval().multipliedBy(2)));
                if (readAll && settled && pending.isEmpty() && allReplicated) {
                    break;
                }
                ensureEngineDuringFinal();
            }
            if (undecodable > 0) {
                findings.add(undecodable + " records on the engine's topics could not be decoded");
            }
        }
        SoakEngine.Life life = engine.current();
        life.process.descendants().forEach(d -> orphanCandidates.add(d.pid()));
        if (life.alive() && !engine.terminate(life, DRAIN)) {
            failures.add(
                    "the final engine did not stop within " + DRAIN.toSeconds() + " s of SIGTERM; log " + life.log);
        }
        return new Events(jobs, jobPublished, failed, captured, created, replicated, violations, quiesced);
    }

    private void ensureEngineDuringFinal() {
        SoakEngine.Life life = engine.current();
        if (!life.alive()) {
            engine.exited(life);
            noteSelfExit(life);
            failures.add(
                    "the engine exited by itself during the final run (" + life.endedBy + "): " + lastErrorLine(life));
            throw new IllegalStateException("the final engine exited; the topics cannot be read: " + life.log);
        }
    }

    // ------------------------------------------------------------------------------------ the checks

    private void check(Events ev) throws IOException {
        Repository primary = Repository.open(new FileObjectTarget(data.resolve("repo")));
        Map<String, String> unreadable = new TreeMap<>();
        Map<String, Manifest> points = readableManifests(primary, unreadable);
        for (Map.Entry<String, String> u : unreadable.entrySet()) {
            boolean expected = u.getKey().equals(truncatedVm + "/" + truncatedId);
            if (!expected) {
                failures.add("manifest " + u.getKey() + " in the primary cannot be read: " + u.getValue());
            }
        }
        checkListing(primary);

        // 1. every firing → one point or a JobFailed with a reason
        Map<String, List<Manifest>> byJob = new HashMap<>();
        points.values().forEach(m -> byJob.computeIfAbsent(m.jobId(), j -> new ArrayList<>())
                .add(m));
        Set<String> truncatedJob = truncatedJobId == null ? Set.of() : Set.of(truncatedJobId);
        int firings = 0;
        int withPoint = 0;
        int withFailure = 0;
        int unanswered = 0;
        Map<String, Integer> failureReasons = new TreeMap<>();
        for (Map.Entry<String, SnapshotJob> j : ev.jobs().entrySet()) {
            firings++;
            List<Manifest> ms = byJob.getOrDefault(j.getKey(), List.of());
            List<JobFailed> fs = ev.failed().getOrDefault(j.getKey(), List.of());
            fs.forEach(f -> failureReasons.merge(f.stage() + ": " + normalise(f.error()), 1, Integer::sum));
            if (ms.size() > 1) {
                failures.add("job " + j.getKey() + " produced " + ms.size() + " restore points: "
                        + ms.stream().map(Manifest::id).toList());
            }
            if (!ms.isEmpty() || truncatedJob.contains(j.getKey())) {
                withPoint++;
            } else if (!fs.isEmpty()
                    && fs.stream().allMatch(f -> f.error() != null && !f.error().isBlank())) {
                withFailure++;
            } else if (!fs.isEmpty()) {
                failures.add("job " + j.getKey() + " failed without a reason");
                withFailure++;
            } else {
                unanswered++;
                if (unanswered <= 5) {
                    failures.add("job " + j.getKey() + " of " + j.getValue().vm() + " fired for "
                            + j.getValue().scheduledFor() + " produced neither a restore point nor a JobFailed");
                }
            }
        }
        if (unanswered > 5) {
            failures.add((unanswered - 5) + " more jobs produced neither a restore point nor a JobFailed");
        }
        int withoutFiring = 0;
        for (Manifest m : points.values()) {
            if (!ev.jobs().containsKey(m.jobId())) {
                withoutFiring++;
            }
        }
        if (withoutFiring > 0) {
            failures.add(withoutFiring + " restore points belong to jobs absent from " + Topics.jobs(HOST)
                    + " (events lost from the embedded broker?)");
        }
        ObjectNode fir = figures.putObject("firings");
        fir.put("fired", firings);
        fir.put("restorePoint", withPoint);
        fir.put("jobFailed", withFailure);
        fir.put("neither", unanswered);
        fir.put("pointsWithoutFiringOnTopic", withoutFiring);
        ObjectNode reasons = fir.putObject("jobFailedByReason");
        failureReasons.forEach(reasons::put);

        // 2. half-visible: announced but absent, or present but unannounced
        int halfVisible = 0;
        for (String key : ev.created().keySet()) {
            if (!points.containsKey(key) && !unreadable.containsKey(key)) {
                halfVisible++;
                failures.add("RestorePointCreated for " + key + " but the primary has no such manifest");
            }
        }
        for (String key : points.keySet()) {
            if (!ev.created().containsKey(key)) {
                halfVisible++;
                failures.add("restore point " + key + " is in the primary but was never announced"
                        + " (no RestorePointCreated): not replicated by events, invisible to RPO tracking");
            }
        }

        // 3 and 4: on the target, and bit-identical from both
        int onTarget = 0;
        int restoresPassed = 0;
        int restoresFailed = 0;
        Path scratch = Files.createDirectories(o.dir().resolve("restore"));
        try (ObjectTarget s3Target = targetDirect()) {
            Repository replica = Repository.open(s3Target);
            for (Manifest m : points.values()) {
                Optional<Manifest> there;
                try {
                    there = replica.manifest(m.vm(), m.id());
                } catch (RuntimeException e) {
                    failures.add("manifest " + m.vm() + "/" + m.id() + " on " + TARGET + " cannot be read: "
                            + e.getMessage());
                    there = Optional.empty();
                }
                if (there.isEmpty()) {
                    failures.add("restore point " + m.vm() + "/" + m.id() + " is not on " + TARGET);
                } else {
                    onTarget++;
                }
                for (Map.Entry<String, Repository> loc :
                        List.of(Map.entry("local", primary), Map.entry(TARGET, replica))) {
                    if (loc.getKey().equals(TARGET) && there.isEmpty()) {
                        continue;
                    }
                    if (restoreMatches(loc.getValue(), m, loc.getKey(), scratch)) {
                        restoresPassed++;
                    } else {
                        restoresFailed++;
                    }
                }
            }
            if (truncatedId != null) {
                Optional<Manifest> t = replica.manifest(truncatedVm, truncatedId);
                if (t.isEmpty()) {
                    failures.add("the truncated point " + truncatedVm + "/" + truncatedId + " is not on " + TARGET);
                } else if (restoreMatches(replica, t.get(), TARGET, scratch)) {
                    restoresPassed++;
                } else {
                    restoresFailed++;
                }
            }
        }
        ObjectNode pts = figures.putObject("points");
        pts.put("primary", points.size());
        pts.put("unreadableInPrimary", unreadable.size());
        pts.put("onTarget", onTarget);
        pts.put("halfVisible", halfVisible);
        pts.put("restoresPassed", restoresPassed);
        pts.put("restoresFailed", restoresFailed);
        if (truncatedId != null) {
            pts.put("truncatedManifest", truncatedVm + "/" + truncatedId);
        }

        checkModelsWithVmPaused();
        checkRpo(ev, points);
        checkLeftovers();
        measure(ev);

        ObjectNode k = figures.putObject("killsByKind");
        killsByKind.forEach(k::put);
        ObjectNode km = figures.putObject("killsByMoment");
        killsByMoment.forEach(km::put);
        ObjectNode se = figures.putObject("engineExitsByItself");
        selfExits.forEach(se::put);
        selfExits.forEach((why, n) -> failures.add("the engine exited by itself " + n + " time(s) (restart is the"
                + " normal case; it must come up and wait): " + why));
        figures.put("engineStarts", engine.lives().size());
        ObjectNode gc = figures.putObject("gcRuns");
        gc.put("started", gcRuns.size());
        gcOutcomes.entrySet().stream()
                .filter(e -> !e.getKey().startsWith("reaped-"))
                .forEach(e -> gc.put(e.getKey(), e.getValue()));
        figures.put("writes", vms.stream().mapToLong(PatternedVm::writesDone).sum());
        figures.set("logErrors", logErrors());
    }

    /** The product's own listing must show every healthy point even with a truncated manifest. */
    private void checkListing(Repository primary) {
        for (PatternedVm vm : vms) {
            try {
                primary.manifests(vm.name());
            } catch (RuntimeException e) {
                failures.add("Repository.manifests(" + vm.name() + ") fails, hiding every healthy point of the VM: "
                        + e.getMessage());
            }
        }
    }

    private boolean restoreMatches(Repository repo, Manifest m, String location, Path scratch) {
        Map<String, String> restored = new LinkedHashMap<>();
        try {
            for (DiskEntry d : m.disks()) {
                Path image = scratch.resolve(m.vm() + "-" + d.name() + ".raw");
                Files.deleteIfExists(image);
                new Restorer(repo, 4).restoreDisk(m, d.name(), image, Restorer.Progress.NONE);
                restored.put(d.name(), sha256(image)); // our own checksum, not the restorer's
                Files.delete(image);
            }
        } catch (IOException | RuntimeException e) {
            failures.add("restore of " + m.vm() + "/" + m.id() + " from " + location + " failed: " + e.getMessage());
            return false;
        }
        PatternedVm vm =
                vms.stream().filter(v -> v.name().equals(m.vm())).findFirst().orElse(null);
        if (vm == null) {
            failures.add("restore point " + m.vm() + "/" + m.id() + " is of a VM the soak does not run");
            return false;
        }
        SoakModel.Verdict v = vm.model.judge(m.capturedAt(), CAPTURE_SLACK, restored);
        if (!v.accepted()) {
            failures.add("restore of " + m.vm() + "/" + m.id() + " (captured " + m.capturedAt() + ") from " + location
                    + " is not the disk at its snapshot moment: " + v.detail());
        }
        return v.accepted();
    }

    /** Pauses each VM, reads its disks with qemu-img (not the engine), compares with the model. */
    private void checkModelsWithVmPaused() {
        int ok = 0;
        for (PatternedVm vm : vms) {
            try {
                vm.qemu.qmp("stop", null);
                for (String disk : vm.qemu.diskIds()) {
                    vm.qemu.qemuIo(disk, "flush", "");
                }
                for (String disk : vm.qemu.diskIds()) {
                    Path raw = o.dir().resolve("restore").resolve("paused-" + vm.name() + "-" + disk + ".raw");
                    run(
                            "qemu-img",
                            "convert",
                            "-U",
                            "-O",
                            "raw",
                            vm.qemu.diskFile(disk).toString(),
                            raw.toString());
                    String actual = sha256(raw);
                    Files.delete(raw);
                    String expected = vm.model.latest().sha256().get(disk);
                    if (!actual.equals(expected)) {
                        failures.add("the disk " + vm.name() + "/" + disk + " read with the VM paused differs from the"
                                + " soak's model: the model (and so every restore check) is wrong");
                    } else {
                        ok++;
                    }
                }
                vm.qemu.qmp("cont", null);
            } catch (IOException | RuntimeException e) {
                failures.add("cannot check " + vm.name() + "'s disks with the VM paused: " + e.getMessage());
            }
        }
        figures.put("disksMatchingModelWithVmPaused", ok);
    }

    /**
     * Independently of the engine: when was each VM's newest point at a location older than the
     * RPO while the engine ran? Each such episode must have an RpoViolated for that VM and location.
     */
    private void checkRpo(Events ev, Map<String, Manifest> points) {
        Duration rpo = o.rpo();
        Duration watchdog = Duration.ofSeconds(10); // the engine checks every 5 s
        int missed = 0;
        int raised = 0;
        for (PatternedVm vm : vms) {
            for (String location : List.of("local", TARGET)) {
                // visible from: commit (RestorePointCreated) or replica (ReplicaCommitted) time
                TreeMap<Instant, Instant> visible = new TreeMap<>(); // visibleAt → capturedAt
                for (Map.Entry<String, Manifest> p : points.entrySet()) {
                    if (!p.getValue().vm().equals(vm.name())) {
                        continue;
                    }
                    Event e = location.equals("local")
                            ? ev.created().get(p.getKey())
                            : ev.replicated().get(p.getKey() + "@" + TARGET);
                    if (e != null) {
                        visible.merge(e.time(), p.getValue().capturedAt(), (a, b) -> a.isAfter(b) ? a : b);
                    }
                }
                if (visible.isEmpty()) {
                    continue;
                }
                // walk time from the first visible point to the quiesce moment, in steps
                Instant newest = null;
                Instant t = visible.firstKey();
                Instant episodeStart = null;
                List<Instant[]> episodes = new ArrayList<>();
                while (!t.isAfter(ev.quiesced())) {
                    for (Map.Entry<Instant, Instant> v :
                            visible.headMap(t, true).entrySet()) {
                        if (newest == null || v.getValue().isAfter(newest)) {
                            newest = v.getValue();
                        }
                    }
                    boolean over = Duration.between(newest, t).compareTo(rpo) > 0;
                    if (over && episodeStart == null) {
                        episodeStart = t;
                    } else if (!over && episodeStart != null) {
                        episodes.add(new Instant[] {episodeStart, t});
                        episodeStart = null;
                    }
                    t = t.plusSeconds(1);
                }
                if (episodeStart != null) {
                    episodes.add(new Instant[] {episodeStart, ev.quiesced()});
                }
                for (Instant[] ep : episodes) {
                    // the engine can only raise it while it runs: need enough running time inside the episode
                    if (engineUpWithin(ep[0], ep[1]).compareTo(watchdog.multipliedBy(2)) < 0) {
                        continue;
                    }
                    missed++;
                    boolean seen = ev.violations().stream().anyMatch(e -> {
                        RpoViolated v = (RpoViolated) e.payload();
                        return v.vm().equals(vm.name())
                                && v.location().equals(location)
                                // episodes are sampled once a second, so one starts up to 1 s after the engine saw it
                                && !e.time().isBefore(ep[0].minusSeconds(1))
                                && !e.time().isAfter(ep[1].plus(watchdog));
                    });
                    if (seen) {
                        raised++;
                    } else {
                        failures.add("RPO missed by " + vm.name() + " at " + location + " from " + ep[0] + " to "
                                + ep[1] + " (engine up "
                                + engineUpWithin(ep[0], ep[1]).toSeconds()
                                + " s of it) but no RpoViolated was raised");
                    }
                }
            }
        }
        ObjectNode r = figures.putObject("rpo");
        r.put("missed", missed);
        r.put("violationsRaisedForThem", raised);
        r.put("violationEventsTotal", ev.violations().size());
    }

    /** The longest time one engine life was ready (said it was running) within {@code [from, to]}. */
    private Duration engineUpWithin(Instant from, Instant to) {
        Duration best = Duration.ZERO;
        for (SoakEngine.Life l : engine.lives()) {
            Optional<Instant> ready = l.ready();
            if (ready.isEmpty()) {
                continue;
            }
            Instant s = ready.get().isAfter(from) ? ready.get() : from;
            Instant e = l.ended == null || l.ended.isAfter(to) ? to : l.ended;
            if (e.isAfter(s) && Duration.between(s, e).compareTo(best) > 0) {
                best = Duration.between(s, e);
            }
        }
        return best;
    }

    private void checkLeftovers() throws IOException {
        ArrayNode left = Json.mapper().createArrayNode();
        Path work = data.resolve("work");
        if (Files.isDirectory(work)) {
            try (Stream<Path> s = Files.walk(work)) {
                s.filter(p -> !p.equals(work)).forEach(p -> left.add("file " + p));
            }
        }
        Path repo = data.resolve("repo");
        if (Files.isDirectory(repo)) {
            try (Stream<Path> s = Files.walk(repo)) {
                s.filter(p -> p.getFileName().toString().contains(FileObjectTarget.TEMP_MARKER))
                        .forEach(p -> left.add("temporary object " + p));
            }
        }
        for (PatternedVm vm : vms) {
            JsonNode jobs = vm.qemu.qmp("query-block-jobs", null);
            jobs.forEach(j -> left.add(
                    "block job on " + vm.name() + ": " + j.path("device").asText()));
            Set<String> ours = new HashSet<>();
            for (String d : vm.qemu.diskIds()) {
                ours.add(vm.qemu.nodeName(d));
                ours.add(d + "-file");
            }
            for (JsonNode n :
                    vm.qemu.qmp("query-named-block-nodes", QemuVm.args().put("flat", true))) {
                String name = n.path("node-name").asText();
                if (!ours.contains(name) && !name.startsWith("#")) {
                    left.add("block node on " + vm.name() + ": " + name);
                }
            }
            for (JsonNode e : vm.qemu.qmp("query-block-exports", null)) {
                left.add("block export on " + vm.name() + ": " + e.path("id").asText());
            }
        }
        Set<Long> qemus = new HashSet<>();
        vms.forEach(v -> qemus.add(v.qemu.pid()));
        ProcessHandle.current()
                .descendants()
                .filter(p -> !qemus.contains(p.pid()))
                .forEach(p -> left.add(
                        "process " + p.pid() + " " + p.info().commandLine().orElse("?")));
        for (long pid : orphanCandidates) {
            ProcessHandle.of(pid)
                    .filter(ProcessHandle::isAlive)
                    .ifPresent(p -> left.add("orphaned child of a stopped engine: " + pid + " "
                            + p.info().commandLine().orElse("?")));
        }
        figures.set("leftovers", left);
        left.forEach(l -> failures.add("left behind: " + l.asText()));
    }

    private void measure(Events ev) {
        // restart → first job running (its capture moment)
        List<Double> toFirst = new ArrayList<>();
        List<Instant> captures = new ArrayList<>(ev.captured().values());
        captures.sort(Comparator.naturalOrder());
        for (SoakEngine.Life l : engine.lives()) {
            Instant end = l.ended == null ? Instant.MAX : l.ended;
            captures.stream()
                    .filter(c -> c.isAfter(l.started) && c.isBefore(end))
                    .findFirst()
                    .ifPresent(c -> toFirst.add(Duration.between(l.started, c).toMillis() / 1e3));
        }
        List<Double> toReady = new ArrayList<>();
        engine.lives().forEach(l -> l.ready()
                .ifPresent(t -> toReady.add(Duration.between(l.started, t).toMillis() / 1e3)));
        ObjectNode ready = figures.putObject("restartToReadySeconds");
        ready.put("samples", toReady.size());
        ready.put("p50", percentile(toReady, 50));
        ready.put("p99", percentile(toReady, 99));
        ObjectNode r = figures.putObject("restartToFirstJobSeconds");
        r.put("samples", toFirst.size());
        r.put("startsWithoutAJob", engine.lives().size() - toFirst.size());
        r.put("p50", percentile(toFirst, 50));
        r.put("p99", percentile(toFirst, 99));
        r.put("policyIntervalSeconds", o.interval().toSeconds());
        figures.set("catchUpAfterOutage", catchUp);
        if (outageWindow != null) {
            catchUp.put(
                    "outageSeconds",
                    Duration.between(outageWindow[0], outageWindow[1]).toSeconds());
            catchUp.put("retryDeadlineSeconds", o.retryDeadline().toSeconds());
        }
        // firing lag (scheduledFor → capture) of the healthy VMs: stuck window vs the baseline before it
        if (stuckWindow != null) {
            ObjectNode lag = figures.putObject("firingLagOfHealthyVmsSeconds");
            lag.put("stuckVm", stuckVm);
            List<Double> base = lags(ev, baselineWindow);
            List<Double> stuck = lags(ev, stuckWindow);
            lag.put("baselineSamples", base.size());
            lag.put("baselineP99", percentile(base, 99));
            lag.put("stuckSamples", stuck.size());
            lag.put("stuckP99", percentile(stuck, 99));
            long neverCaptured = ev.jobs().entrySet().stream()
                    .filter(j -> !j.getValue().vm().equals(stuckVm)
                            && in(j.getValue().scheduledFor(), stuckWindow))
                    .filter(j -> !ev.captured().containsKey(j.getKey()))
                    .count();
            lag.put("stuckWindowJobsNeverCaptured", neverCaptured);
            double b = percentile(base, 99);
            if (b > 0 && !stuck.isEmpty()) {
                lag.put("ratio", percentile(stuck, 99) / b);
            }
        }
    }

    private List<Double> lags(Events ev, Instant[] window) {
        List<Double> out = new ArrayList<>();
        for (Map.Entry<String, SnapshotJob> j : ev.jobs().entrySet()) {
            SnapshotJob job = j.getValue();
            Instant c = ev.captured().get(j.getKey());
            if (!job.vm().equals(stuckVm) && in(job.scheduledFor(), window) && c != null) {
                out.add(Duration.between(job.scheduledFor(), c).toMillis() / 1e3);
            }
        }
        return out;
    }

    private static boolean in(Instant t, Instant[] w) {
        return w != null && w[1] != null && !t.isBefore(w[0]) && t.isBefore(w[1]);
    }

    private ObjectNode logErrors() {
        Map<String, Integer> counts = new TreeMap<>();
        for (SoakEngine.Life l : engine.lives()) {
            Matcher m = ERROR_LINE.matcher(l.logText());
            while (m.find()) {
                counts.merge(m.group(1) + " " + m.group(2) + " - " + normalise(m.group(3)), 1, Integer::sum);
            }
        }
        ObjectNode n = Json.mapper().createObjectNode();
        counts.entrySet().stream()
                .sorted(Map.Entry.<String, Integer>comparingByValue().reversed())
                .limit(40)
                .forEach(e -> n.put(e.getKey(), e.getValue()));
        return n;
    }

    // ----------------------------------------------------------------------------------- the helpers

    private ObjectTarget targetDirect() {
        S3TargetSpec spec = S3TargetSpec.builder()
                .endpoint(s3.endpoint())
                .region(s3.region())
                .bucket(BUCKET)
                .prefix("soak")
                .pathStyle(true)
                .build();
        return S3ObjectTarget.create(spec, S3Credentials.of(s3.accessKey(), s3.secretKey()));
    }

    /**
     * Every readable manifest of a repository by "vm/id" ({@link Repository#listing}: one unreadable
     * manifest hides nothing); each unreadable one goes into {@code unreadable} with why, when given.
     */
    static Map<String, Manifest> readableManifests(Repository repo, Map<String, String> unreadable) {
        Map<String, Manifest> out = new TreeMap<>();
        for (String vm : repo.vms()) {
            Repository.Listing listing = repo.listing(vm);
            listing.points().forEach(m -> out.put(vm + "/" + m.id(), m));
            if (unreadable != null) {
                listing.unreadable().forEach(u -> unreadable.put(vm + "/" + u.id(), u.reason()));
            }
        }
        return out;
    }

    private List<String> workFiles() {
        Path work = data.resolve("work");
        if (!Files.isDirectory(work)) {
            return List.of();
        }
        try (Stream<Path> s = Files.walk(work, 3)) {
            return s.map(p -> p.getFileName().toString()).toList();
        } catch (IOException | UncheckedIOException e) {
            return List.of(); // files come and go while we walk
        }
    }

    private Set<String> manifestFiles() {
        Path dir = data.resolve("repo").resolve(ObjectKeys.MANIFESTS);
        if (!Files.isDirectory(dir)) {
            return Set.of();
        }
        try (Stream<Path> s = Files.walk(dir, 2)) {
            Set<String> out = new HashSet<>();
            s.filter(p -> p.toString().endsWith(".json")).forEach(p -> out.add(p.toString()));
            return out;
        } catch (IOException | UncheckedIOException e) {
            return Set.of();
        }
    }

    static String sha256(Path file) throws IOException {
        try (InputStream in = Files.newInputStream(file)) {
            MessageDigest md = MessageDigest.getInstance("SHA-256");
            byte[] buf = new byte[1 << 20];
            int n;
            while ((n = in.read(buf)) > 0) {
                md.update(buf, 0, n);
            }
            return HexFormat.of().formatHex(md.digest());
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException("the JDK has no SHA-256", e);
        }
    }

    /** Error text with ids, numbers and paths blanked, so equal causes count together. */
    static String normalise(String s) {
        if (s == null) {
            return "(none)";
        }
        String t = s.replaceAll("/[\\w./+-]+", "<path>")
                .replaceAll("[0-9a-f]{8}-[0-9a-f-]{27,}", "<uuid>")
                .replaceAll("\\b[0-9A-Z]{26}\\b", "<id>")
                .replaceAll("\\d+(\\.\\d+)?", "N");
        return t.length() > 160 ? t.substring(0, 160) + "…" : t;
    }

    private static String lastErrorLine(SoakEngine.Life life) {
        Matcher m = ERROR_LINE.matcher(life.logText());
        String last = null;
        while (m.find()) {
            if (m.group(1).equals("ERROR")) {
                last = m.group(3);
            }
        }
        if (last != null) {
            return last;
        }
        String[] lines = life.logText().strip().split("\n");
        return lines.length == 0 ? "(empty log)" : lines[lines.length - 1];
    }

    private static String lastLines(Path file, int n) {
        try {
            List<String> lines = Files.readAllLines(file);
            return String.join(" | ", lines.subList(Math.max(0, lines.size() - n), lines.size()));
        } catch (IOException e) {
            return "(unreadable: " + e.getMessage() + ")";
        }
    }

    private static double percentile(List<Double> values, int p) {
        if (values.isEmpty()) {
            return 0;
        }
        List<Double> s = new ArrayList<>(values);
        s.sort(Comparator.naturalOrder());
        int i = (int) Math.ceil(p / 100.0 * s.size()) - 1;
        return s.get(Math.max(0, Math.min(s.size() - 1, i)));
    }

    private static Path away(Path socket) {
        return socket.resolveSibling(socket.getFileName() + ".away");
    }

    private static void moveQuietly(Path from, Path to) {
        try {
            Files.move(from, to, StandardCopyOption.ATOMIC_MOVE);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot move " + from + " to " + to, e);
        }
    }

    private static void signal(long pid, String sig) {
        run("kill", "-" + sig, Long.toString(pid));
    }

    private static void run(String... cmd) {
        ExternalCommand.of(List.of(cmd))
                .timeout(Duration.ofSeconds(120))
                .mergeStderr()
                .run();
    }

    private static void sleep(Duration d) {
        LockSupport.parkNanos(d.toNanos()); // pacing a fault window, not synchronisation
    }

    private static String loadAverage() {
        try {
            return Files.readString(Path.of("/proc/loadavg")).strip();
        } catch (IOException e) {
            return "unknown";
        }
    }
}
