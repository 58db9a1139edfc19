package io.tidemark.policies;

import io.tidemark.core.event.ConsistencyPolicy;
import java.io.IOException;
import java.io.StringReader;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.CharBuffer;
import java.nio.charset.CharsetDecoder;
import java.nio.charset.CoderResult;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.text.ParseException;
import java.time.Clock;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.Date;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import java.util.OptionalLong;
import java.util.TimeZone;
import java.util.regex.Pattern;
import java.util.stream.Stream;
import org.quartz.CronExpression;
import org.yaml.snakeyaml.LoaderOptions;
import org.yaml.snakeyaml.Yaml;
import org.yaml.snakeyaml.error.Mark;
import org.yaml.snakeyaml.error.MarkedYAMLException;
import org.yaml.snakeyaml.error.YAMLException;
import org.yaml.snakeyaml.nodes.MappingNode;
import org.yaml.snakeyaml.nodes.Node;
import org.yaml.snakeyaml.nodes.SequenceNode;
import org.yaml.snakeyaml.reader.ReaderException;

/**
 * Reads policy files. A file holds one policy, a YAML mapping; the language is described in {@code
 * docs/policy-reference.md}.
 *
 * <p>Contract: for any input bytes, every method either returns valid, immutable policies or throws
 * one {@link PolicyException} listing every problem found (all files of a directory, all problems
 * of each file) with file, line, column and key path. Nothing else escapes. Inputs larger than
 * {@link #MAX_FILE_BYTES} and documents with many aliases are refused rather than parsed.
 *
 * <p>Instances are immutable and thread-safe. The clock is used only to check that a cron
 * expression fires at all in the future.
 */
public final class PolicyParser {
    /** The largest policy file accepted, in bytes. */
    public static final int MAX_FILE_BYTES = 1 << 20;

    /** The shortest interval a policy may ask for. */
    public static final Duration MIN_INTERVAL = Duration.ofSeconds(10);

    static final List<String> TOP_KEYS = List.of(
            "name",
            "vms",
            "schedule",
            "consistency",
            "rpo",
            "rto",
            "full-every",
            "targets",
            "retention",
            "triggers",
            "qos",
            "budget",
            "tiers",
            "mode",
            "dr");
    static final List<String> TIER_KEYS = List.of("location", "keep", "storage-class");
    static final List<String> TRIGGERS_KEYS = List.of("pre-deploy");
    static final List<String> PRE_DEPLOY_KEYS = List.of("apps");
    static final List<String> RETENTION_KEYS = List.of("last", "hourly", "daily", "weekly", "monthly", "yearly");
    static final List<String> VMS_KEYS = List.of("names", "globs", "labels");
    static final List<String> SCHEDULE_KEYS = List.of("interval", "cron", "jitter");
    static final List<String> TARGET_KEYS = List.of("name", "rpo");
    static final List<String> QOS_KEYS = List.of("read-bandwidth", "read-iops");
    static final List<String> DR_KEYS = List.of("nbd", "qmp", "node", "points", "keep", "tls");

    /** Keys of {@code dr.tls}. */
    static final List<String> DR_TLS_KEYS = List.of("dir", "hostname");

    /** The largest RPO of a continuous policy: the mirror lag tolerated is seconds (ADR 19). */
    public static final Duration MAX_CONTINUOUS_RPO = Duration.ofSeconds(60);

    /** The most read requests per second {@code qos.read-iops} may allow. */
    public static final long MAX_READ_IOPS = 10_000_000;

    private static final Pattern NAME = Pattern.compile("[a-z0-9-]+");
    private static final Pattern STORAGE_CLASS = Pattern.compile("[A-Z][A-Z0-9_]{0,63}");
    private static final Pattern APP_NAME = Pattern.compile("[A-Za-z0-9][A-Za-z0-9._-]{0,99}");
    private static final int MAX_ALIASES = 10;
    private static final int MAX_NESTING = 20;
    private static final int CRON_GAPS_CHECKED = 16;
    private static final TimeZone UTC = TimeZone.getTimeZone("UTC");

    private final Clock clock;

    /** A parser on the system clock. */
    public PolicyParser() {
        this(Clock.systemUTC());
    }

    /** A parser that judges cron expressions against {@code clock}. */
    public PolicyParser(Clock clock) {
        this.clock = Objects.requireNonNull(clock, "clock");
    }

    /**
     * Parses {@code text} in the policy duration syntax ({@code 30s}, {@code 15m}, {@code 1h30m}).
     *
     * @throws IllegalArgumentException if it is not such a duration
     */
    public static Duration parseDuration(String text) {
        return DurationSyntax.parse(text)
                .orElseThrow(() ->
                        new IllegalArgumentException("expected " + DurationSyntax.EXAMPLE + ", got \"" + text + "\""));
    }

    /** {@code duration} in the policy syntax, in whole seconds, such as {@code 1h30m}. */
    public static String formatDuration(Duration duration) {
        return DurationSyntax.format(duration);
    }

    /**
     * Loads every {@code *.yaml} and {@code *.yml} regular file directly in {@code dir} (not in
     * subdirectories; names starting with a dot are skipped), in file-name order. Policy names must
     * be unique across the directory. An empty directory gives an empty set.
     *
     * @throws PolicyException listing the problems of every file, if any file has one
     */
    public PolicySet loadDirectory(Path dir) {
        if (!Files.isDirectory(dir)) {
            throw new PolicyException(
                    List.of(new PolicyProblem(dir, 0, 0, "", "not a directory, or it does not exist")));
        }
        List<Path> files;
        try (Stream<Path> listing = Files.list(dir)) {
            files = listing.filter(PolicyParser::isPolicyFile).sorted().toList();
        } catch (IOException | UncheckedIOException | SecurityException e) {
            throw new PolicyException(
                    List.of(new PolicyProblem(dir, 0, 0, "", "cannot list the policy directory: " + describe(e))));
        }
        List<PolicyProblem> problems = new ArrayList<>();
        List<FileResult> results = new ArrayList<>();
        for (Path file : files) {
            FileResult r = read(file);
            results.add(r);
            problems.addAll(r.problems());
        }
        problems.addAll(duplicateNames(results));
        problems.addAll(continuousOverlaps(results));
        problems.sort(Comparator.comparing((PolicyProblem p) -> p.file().toString())
                .thenComparingInt(PolicyProblem::line)
                .thenComparingInt(PolicyProblem::column));
        if (!problems.isEmpty()) {
            throw new PolicyException(problems);
        }
        return PolicySet.of(results.stream().map(r -> r.policy().orElseThrow()).toList());
    }

    /**
     * Parses one policy file.
     *
     * @throws PolicyException listing every problem of the file
     */
    public Policy parseFile(Path file) {
        return orThrow(read(file));
    }

    /**
     * Parses {@code yaml} as the content of a policy file called {@code file} (which need not
     * exist; it is only named in problems), for content that does not come from the file system,
     * such as a git blob.
     *
     * @throws PolicyException listing every problem of the content
     */
    public Policy parse(Path file, byte[] yaml) {
        return orThrow(parseBytes(file, yaml));
    }

    private static Policy orThrow(FileResult r) {
        if (!r.problems().isEmpty()) {
            throw new PolicyException(r.problems());
        }
        return r.policy().orElseThrow();
    }

    private static boolean isPolicyFile(Path p) {
        String name = p.getFileName().toString();
        return !name.startsWith(".") && (name.endsWith(".yaml") || name.endsWith(".yml")) && Files.isRegularFile(p);
    }

    private FileResult read(Path file) {
        byte[] bytes;
        try {
            if (Files.size(file) > MAX_FILE_BYTES) {
                return FileResult.failed(file, "file is larger than " + MAX_FILE_BYTES + " bytes");
            }
            bytes = Files.readAllBytes(file);
        } catch (IOException | SecurityException e) {
            return FileResult.failed(file, "cannot read the file: " + describe(e));
        }
        return parseBytes(file, bytes);
    }

    private static String describe(Exception e) {
        return e.getClass().getSimpleName() + (e.getMessage() == null ? "" : ": " + e.getMessage());
    }

    // ---- bytes to a YAML node -------------------------------------------------------------------

    private FileResult parseBytes(Path file, byte[] bytes) {
        Problems problems = new Problems(file);
        if (bytes.length > MAX_FILE_BYTES) {
            problems.add(0, 0, "", "file is larger than " + MAX_FILE_BYTES + " bytes");
            return new FileResult(file, Optional.empty(), problems.sorted(), null);
        }
        Optional<String> text = decode(bytes, problems);
        Optional<Node> root = text.flatMap(t -> compose(t, problems));
        if (root.isEmpty()) {
            return new FileResult(file, Optional.empty(), problems.sorted(), null);
        }
        if (!(root.get() instanceof MappingNode mapping)) {
            problems.at(
                    root.get(),
                    "",
                    "expected a mapping of policy keys (name, vms, schedule, rpo, ...), got "
                            + MappingReader.describe(root.get()));
            return new FileResult(file, Optional.empty(), problems.sorted(), null);
        }
        MappingReader top = new MappingReader(mapping, "", problems);
        top.allowOnly(TOP_KEYS);
        top.require("name", "vms", "schedule", "rpo");
        Optional<String> name = readName(top, problems);
        Optional<Policy> policy = readPolicy(top, name, problems);
        NameAt nameAt = name.map(
                        n -> new NameAt(n, top.value("name").orElseThrow().getStartMark()))
                .orElse(null);
        return new FileResult(file, problems.isEmpty() ? policy : Optional.empty(), problems.sorted(), nameAt);
    }

    static Optional<String> decode(byte[] bytes, Problems problems) {
        int start =
                bytes.length >= 3 && (bytes[0] & 0xff) == 0xef && (bytes[1] & 0xff) == 0xbb && (bytes[2] & 0xff) == 0xbf
                        ? 3
                        : 0;
        CharsetDecoder decoder = StandardCharsets.UTF_8
                .newDecoder()
                .onMalformedInput(CodingErrorAction.REPORT)
                .onUnmappableCharacter(CodingErrorAction.REPORT);
        ByteBuffer in = ByteBuffer.wrap(bytes, start, bytes.length - start);
        CharBuffer out = CharBuffer.allocate(bytes.length);
        CoderResult result = decoder.decode(in, out, true);
        if (!result.isError()) {
            result = decoder.flush(out);
        }
        if (result.isError()) {
            out.flip();
            String before = out.toString();
            int line = 1 + (int) before.chars().filter(c -> c == '\n').count();
            int column = 1 + before.length() - (before.lastIndexOf('\n') + 1);
            problems.add(line, column, "", "the file is not valid UTF-8 (byte offset " + in.position() + ")");
            return Optional.empty();
        }
        out.flip();
        return Optional.of(out.toString());
    }

    static Optional<Node> compose(String text, Problems problems) {
        LoaderOptions options = new LoaderOptions();
        options.setMaxAliasesForCollections(MAX_ALIASES);
        options.setCodePointLimit(MAX_FILE_BYTES);
        options.setNestingDepthLimit(MAX_NESTING);
        options.setAllowRecursiveKeys(false);
        try {
            Iterator<Node> documents =
                    new Yaml(options).composeAll(new StringReader(text)).iterator();
            if (!documents.hasNext()) {
                problems.add(
                        1,
                        1,
                        "",
                        "the file is empty; a policy file holds one mapping with name, vms, schedule and rpo");
                return Optional.empty();
            }
            Node first = documents.next();
            if (documents.hasNext()) {
                Node second = documents.next();
                problems.at(
                        second == null ? null : second.getStartMark(),
                        "",
                        "a policy file holds one policy; found a second YAML document (split it into another file)");
            }
            return Optional.ofNullable(first);
        } catch (MarkedYAMLException e) {
            Mark mark = e.getProblemMark() != null ? e.getProblemMark() : e.getContextMark();
            String what = e.getProblem() != null ? e.getProblem() : e.getContext();
            problems.at(mark, "", "invalid YAML: " + (what == null ? "syntax error" : what.strip()));
        } catch (ReaderException e) {
            int[] lineColumn = position(text, e.getPosition());
            problems.add(
                    lineColumn[0],
                    lineColumn[1],
                    "",
                    String.format("invalid YAML: character U+%04X is not allowed", e.getCodePoint()));
        } catch (YAMLException e) {
            problems.add(0, 0, "", "invalid YAML: " + e.getMessage());
        } catch (IllegalArgumentException e) {
            // SnakeYAML 2.x lets some malformed input out unwrapped, e.g. the tag of "!D91%D" ("Tag must not
            // contain leading or trailing spaces"); found by PolicyParserFuzzTest, kept in its corpus
            problems.add(0, 0, "", "invalid YAML: " + e.getMessage());
        }
        return Optional.empty();
    }

    /** The 1-based line and column of code point {@code index} of {@code text}. */
    private static int[] position(String text, int index) {
        int line = 1;
        int column = 1;
        int seen = 0;
        for (int i = 0; i < text.length() && seen < index; i = text.offsetByCodePoints(i, 1), seen++) {
            if (text.charAt(i) == '\n') {
                line++;
                column = 1;
            } else {
                column++;
            }
        }
        return new int[] {line, column};
    }

    // ---- a YAML node to a policy ----------------------------------------------------------------

    private static Optional<String> readName(MappingReader top, Problems problems) {
        Optional<String> name = top.string("name", "a policy name");
        if (name.isPresent() && !NAME.matcher(name.get()).matches()) {
            problems.at(
                    top.value("name").orElseThrow(),
                    "name",
                    "expected lower-case letters, digits and '-' only, got " + MappingReader.quote(name.get()));
            return Optional.empty();
        }
        return name;
    }

    private Optional<Policy> readPolicy(MappingReader top, Optional<String> name, Problems problems) {
        Optional<VmSelector> vms =
                top.mapping("vms", "a mapping with names, globs or labels").flatMap(m -> readSelector(m, problems));
        Optional<Schedule> schedule =
                top.mapping("schedule", "a mapping with interval or cron").flatMap(m -> readSchedule(m, problems));
        Optional<ConsistencyPolicy> consistency = top.has("consistency")
                ? top.oneOf(
                        "consistency",
                        MappingReader.byName(List.of(ConsistencyPolicy.values()), ConsistencyPolicy::spelling))
                : Optional.of(ConsistencyPolicy.CRASH);
        Optional<Duration> rpo = top.positiveDuration("rpo");
        Optional<Duration> rto = top.positiveDuration("rto");
        Optional<Duration> fullEvery = top.positiveDuration("full-every");
        Optional<TargetList> targetList =
                top.has("targets") ? readTargets(top, problems) : Optional.of(new TargetList(List.of(), Map.of()));
        Optional<List<String>> targets = targetList.map(TargetList::names);
        Optional<Map<String, Retention>> retention = top.has("retention")
                ? top.mapping("retention", "a mapping of locations (local, or a target) to retention rules")
                        .flatMap(m -> readRetention(m, targets.orElse(List.of()), problems))
                : Optional.of(Map.of());
        Optional<List<String>> preDeployApps = top.has("triggers")
                ? top.mapping("triggers", "a mapping with pre-deploy").flatMap(m -> readTriggers(m, problems))
                : Optional.of(List.of());

        Optional<Policy.Qos> qos = top.has("qos")
                ? top.mapping("qos", "a mapping with read-bandwidth or read-iops")
                        .flatMap(m -> readQos(m, problems))
                : Optional.of(Policy.Qos.NONE);
        Optional<Map<String, Long>> budgets = top.has("budget")
                ? top.mapping("budget", "a mapping of locations (local, or a target) to sizes such as 50GiB")
                        .flatMap(m -> readBudgets(m, targets.orElse(List.of()), problems))
                : Optional.of(Map.of());
        Optional<Tiers> tiers = top.has("tiers")
                ? top.mapping("tiers", "a mapping of tier names to {location, keep, storage-class}")
                        .flatMap(m -> readTiers(m, targets.orElse(List.of()), problems))
                : Optional.of(Tiers.NONE);

        Optional<Optional<Policy.Continuous>> continuous = readMode(top, rpo, problems);

        if (!problems.isEmpty()) {
            return Optional.empty();
        }
        return Optional.of(new Policy(
                name.orElseThrow(),
                vms.orElseThrow(),
                schedule.orElseThrow(),
                consistency.orElseThrow(),
                rpo.orElseThrow(),
                rto,
                fullEvery,
                targets.orElseThrow(),
                retention.orElseThrow(),
                Optional.of(problems.file()),
                preDeployApps.orElseThrow(),
                targetList.orElseThrow().rpos(),
                qos.orElseThrow(),
                budgets.orElseThrow(),
                tiers.orElseThrow(),
                continuous.orElseThrow()));
    }

    /**
     * {@code mode} ({@code scheduled}, the default, or {@code continuous}) and, for continuous
     * protection, {@code dr.nbd}: the DR export template. A continuous policy's {@code rpo} is the
     * mirror lag it tolerates, at most {@link #MAX_CONTINUOUS_RPO}; it takes no snapshots, so it has
     * no pre-deploy trigger.
     */
    private static Optional<Optional<Policy.Continuous>> readMode(
            MappingReader top, Optional<Duration> rpo, Problems problems) {
        boolean continuous;
        if (top.has("mode")) {
            Map<String, Boolean> modes = new LinkedHashMap<>();
            modes.put("scheduled", false);
            modes.put("continuous", true);
            Optional<Boolean> mode = top.oneOf("mode", modes);
            if (mode.isEmpty()) {
                return Optional.empty();
            }
            continuous = mode.get();
        } else {
            continuous = false;
        }
        if (!continuous) {
            if (top.has("dr")) {
                problems.at(
                        top.keyNode("dr").orElseThrow(),
                        "dr",
                        "dr is the DR export of continuous protection; add mode: continuous, or remove dr");
                return Optional.empty();
            }
            return Optional.of(Optional.empty());
        }
        boolean ok = true;
        if (rpo.isPresent() && rpo.get().compareTo(MAX_CONTINUOUS_RPO) > 0) {
            problems.at(
                    top.value("rpo").orElseThrow(),
                    "rpo",
                    "a continuous policy's rpo is the mirror lag it tolerates, from 1s to "
                            + DurationSyntax.format(MAX_CONTINUOUS_RPO) + ", got " + DurationSyntax.format(rpo.get())
                            + "; for a longer RPO use mode: scheduled");
            ok = false;
        }
        if (top.has("triggers")) {
            problems.at(
                    top.keyNode("triggers").orElseThrow(),
                    "triggers",
                    "a continuous policy takes no snapshots, so no pre-deploy hook can trigger one; remove"
                            + " triggers or use mode: scheduled");
            ok = false;
        }
        if (!top.has("dr")) {
            problems.at(
                    top.value("mode").orElseThrow(),
                    "mode",
                    "a continuous policy needs its DR export: add dr: {nbd: \"nbd://DR-HOST:10809/{vm}-{disk}\"}");
            return Optional.empty();
        }
        Optional<MappingReader> dr = top.mapping("dr", "a mapping with nbd");
        if (dr.isEmpty()) {
            return Optional.empty();
        }
        dr.get().allowOnly(DR_KEYS);
        dr.get().require("nbd");
        Optional<String> nbd = dr.get().string("nbd", "an NBD URI such as nbd://dr-host:10809/{vm}-{disk}");
        if (nbd.isEmpty()) {
            return Optional.empty();
        }
        String uri = nbd.get();
        Node at = dr.get().value("nbd").orElseThrow();
        if (!uri.startsWith("nbd://") && !uri.startsWith("nbd+unix:///")) {
            problems.at(
                    at,
                    dr.get().child("nbd"),
                    "expected an NBD URI, nbd://HOST:PORT/EXPORT or nbd+unix:///EXPORT?socket=/path, got "
                            + MappingReader.quote(uri));
            ok = false;
        } else if (!uri.contains("{disk}")) {
            problems.at(
                    at,
                    dr.get().child("nbd"),
                    "each disk needs its own replica: put {disk} (and {vm} if several VMs share the DR site) in"
                            + " the export name, such as nbd://dr-host:10809/{vm}-{disk}; got "
                            + MappingReader.quote(uri));
            ok = false;
        }
        Optional<Optional<Policy.DrPoints>> points = readDrPoints(dr.get(), problems);
        Optional<Optional<Policy.DrTls>> tls = readDrTls(dr.get(), uri, problems);
        return ok && points.isPresent() && tls.isPresent()
                ? Optional.of(Optional.of(new Policy.Continuous(uri, points.get(), tls.get())))
                : Optional.empty();
    }

    /**
     * {@code dr.tls}: TLS on the NBD link, {@code {dir: /abs/path, hostname: NAME}}. Only for
     * {@code nbd://} (TCP): a Unix socket never leaves the host, so TLS on it is an error (a
     * forwarded socket is already protected by its tunnel).
     */
    private static Optional<Optional<Policy.DrTls>> readDrTls(MappingReader dr, String uri, Problems problems) {
        if (!dr.has("tls")) {
            return Optional.of(Optional.empty());
        }
        if (uri.startsWith("nbd+unix:")) {
            problems.at(
                    dr.keyNode("tls").orElseThrow(),
                    dr.child("tls"),
                    "tls protects a network link, but dr.nbd is a Unix socket on this host; use"
                            + " nbd://DR-HOST:10809/{vm}-{disk} for TLS, or remove tls (a socket forwarded by ssh is"
                            + " already encrypted)");
            return Optional.empty();
        }
        Optional<MappingReader> tls = dr.mapping("tls", "a mapping with dir (and hostname)");
        if (tls.isEmpty()) {
            return Optional.empty();
        }
        tls.get().allowOnly(DR_TLS_KEYS);
        tls.get().require("dir");
        Optional<String> dir =
                tls.get().string("dir", "the absolute directory of ca-cert.pem, client-cert.pem and client-key.pem");
        Optional<String> hostname = tls.get().has("hostname")
                ? tls.get().string("hostname", "the host name in the DR daemon's certificate")
                : Optional.empty();
        if (dir.isEmpty() || (tls.get().has("hostname") && hostname.isEmpty())) {
            return Optional.empty();
        }
        if (!dir.get().startsWith("/")) {
            problems.at(
                    tls.get().value("dir").orElseThrow(),
                    tls.get().child("dir"),
                    "expected an absolute directory on the VM's host such as /etc/pki/tidemark/dr, got "
                            + MappingReader.quote(dir.get()));
            return Optional.empty();
        }
        return Optional.of(Optional.of(new Policy.DrTls(dir.get(), hostname)));
    }

    /**
     * {@code dr.qmp}, {@code dr.node}, {@code dr.points} and {@code dr.keep}: where the schedule's
     * DR points are taken and kept. {@code qmp} and {@code points} come together; without them the
     * mirrors keep no history (and {@code node}, {@code keep} are errors).
     */
    private static Optional<Optional<Policy.DrPoints>> readDrPoints(MappingReader dr, Problems problems) {
        boolean hasQmp = dr.has("qmp");
        boolean hasPoints = dr.has("points");
        if (!hasQmp && !hasPoints) {
            boolean ok = true;
            for (String key : List.of("node", "keep")) {
                if (dr.has(key)) {
                    problems.at(
                            dr.keyNode(key).orElseThrow(),
                            dr.child(key),
                            key + " belongs to DR points: add qmp: \"/run/dr/{vm}-{disk}.qmp\" and points:"
                                    + " \"/dr/points/{vm}\" to dr, or remove " + key);
                    ok = false;
                }
            }
            return ok ? Optional.of(Optional.empty()) : Optional.empty();
        }
        if (hasQmp != hasPoints) {
            String present = hasQmp ? "qmp" : "points";
            problems.at(
                    dr.keyNode(present).orElseThrow(),
                    dr.child(present),
                    "DR points need both the DR daemon's QMP socket and their directory: add "
                            + (hasQmp ? "points: \"/dr/points/{vm}\"" : "qmp: \"/run/dr/{vm}-{disk}.qmp\"")
                            + " to dr");
            return Optional.empty();
        }
        boolean ok = true;
        Optional<String> qmp = dr.string("qmp", "the DR daemon's QMP Unix socket such as /run/dr/{vm}-{disk}.qmp");
        Optional<String> node =
                dr.has("node") ? dr.string("node", "a node name such as {vm}-{disk}") : Optional.empty();
        Optional<String> dir = dr.string("points", "a directory such as /dr/points/{vm}");
        if (qmp.isPresent()) {
            String q = qmp.get().startsWith("unix:") ? qmp.get().substring("unix:".length()) : qmp.get();
            if (!q.startsWith("/")) {
                problems.at(
                        dr.value("qmp").orElseThrow(),
                        dr.child("qmp"),
                        "expected the DR daemon's QMP Unix socket as an absolute path (or unix:/path), such as"
                                + " /run/dr/{vm}-{disk}.qmp, got " + MappingReader.quote(qmp.get())
                                + "; TCP is not supported: forward the socket to this host (ssh -L)");
                ok = false;
            } else if (!q.contains("{disk}") && (node.isEmpty() || !node.get().contains("{disk}"))) {
                problems.at(
                        dr.value("qmp").orElseThrow(),
                        dr.child("qmp"),
                        "the disks share one DR daemon here (no {disk} in qmp), so each needs its own node:"
                                + " add node: \"{vm}-{disk}\" (the replicas' node names in the daemon)");
                ok = false;
            }
        }
        if (dir.isPresent()) {
            if (!dir.get().startsWith("/")) {
                problems.at(
                        dr.value("points").orElseThrow(),
                        dr.child("points"),
                        "expected an absolute directory such as /dr/points/{vm}, got "
                                + MappingReader.quote(dir.get()));
                ok = false;
            } else if (!dir.get().contains("{vm}")) {
                problems.at(
                        dr.value("points").orElseThrow(),
                        dr.child("points"),
                        "each VM needs its own points directory: put {vm} in it, such as /dr/points/{vm}; got "
                                + MappingReader.quote(dir.get()));
                ok = false;
            }
        }
        Optional<Retention> keep = Optional.of(Retention.keepAll());
        if (dr.has("keep")) {
            keep = dr.mapping("keep", "a mapping of " + String.join(", ", RETENTION_KEYS))
                    .flatMap(rule -> readRule(rule, "leave keep out to keep every DR point", problems));
        }
        if (!ok || qmp.isEmpty() || dir.isEmpty() || keep.isEmpty() || (dr.has("node") && node.isEmpty())) {
            return Optional.empty();
        }
        return Optional.of(Optional.of(new Policy.DrPoints(qmp.get(), node, dir.get(), keep.get())));
    }

    /** The targets of a policy: their names in file order, and the RPOs of those that have their own. */
    private record TargetList(List<String> names, Map<String, Duration> rpos) {}

    /**
     * {@code targets}: a list whose items are a target name, or a mapping with the name and the RPO
     * the policy promises at that target ({@code {name: offsite, rpo: 4h}}).
     */
    private static Optional<TargetList> readTargets(MappingReader top, Problems problems) {
        Node value = top.value("targets").orElseThrow();
        if (!(value instanceof SequenceNode seq)) {
            problems.at(
                    value,
                    "targets",
                    "expected a list of target names or {name, rpo} mappings, got " + MappingReader.describe(value));
            return Optional.empty();
        }
        List<String> names = new ArrayList<>();
        Map<String, Duration> rpos = new LinkedHashMap<>();
        boolean ok = true;
        List<Node> items = seq.getValue();
        for (int i = 0; i < items.size(); i++) {
            String itemPath = "targets[" + i + "]";
            Node item = items.get(i);
            Optional<String> name;
            Optional<Duration> rpo = Optional.empty();
            if (item instanceof MappingNode mapping) {
                MappingReader target = new MappingReader(mapping, itemPath, problems);
                target.allowOnly(TARGET_KEYS);
                target.require("name");
                name = target.string("name", "a target name");
                rpo = target.positiveDuration("rpo");
                ok &= target.has("rpo") == rpo.isPresent();
            } else {
                name = top.scalar(item, itemPath, "a target name or a {name, rpo} mapping");
            }
            if (name.isEmpty() || name.get().isBlank()) {
                if (name.isPresent()) {
                    problems.at(item, itemPath, "expected a target name, got an empty string");
                }
                ok = false;
            } else if (names.contains(name.get())) {
                problems.at(item, itemPath, MappingReader.quote(name.get()) + " is listed twice");
                ok = false;
            } else {
                names.add(name.get());
                rpo.ifPresent(r -> rpos.put(name.get(), r));
            }
        }
        return ok ? Optional.of(new TargetList(List.copyOf(names), Map.copyOf(rpos))) : Optional.empty();
    }

    /** {@code qos}: limits on what one snapshot job may consume. */
    private static Optional<Policy.Qos> readQos(MappingReader qos, Problems problems) {
        qos.allowOnly(QOS_KEYS);
        OptionalLong bytes = OptionalLong.empty();
        boolean ok = true;
        Optional<String> readBandwidth = qos.string("read-bandwidth", BandwidthSyntax.EXAMPLE);
        if (readBandwidth.isPresent()) {
            bytes = BandwidthSyntax.parse(readBandwidth.get());
            if (bytes.isEmpty()) {
                problems.at(
                        qos.value("read-bandwidth").orElseThrow(),
                        qos.child("read-bandwidth"),
                        "expected " + BandwidthSyntax.EXAMPLE + ", got " + MappingReader.quote(readBandwidth.get()));
                ok = false;
            }
        } else {
            ok = !qos.has("read-bandwidth");
        }
        OptionalLong iops = OptionalLong.empty();
        Optional<String> readIops = qos.string("read-iops", "a number of read requests per second such as 2000");
        if (readIops.isPresent()) {
            String t = readIops.get().strip();
            if (t.matches("\\d{1,8}") && Long.parseLong(t) > 0 && Long.parseLong(t) <= MAX_READ_IOPS) {
                iops = OptionalLong.of(Long.parseLong(t));
            } else {
                problems.at(
                        qos.value("read-iops").orElseThrow(),
                        qos.child("read-iops"),
                        "expected a whole number of read requests per second from 1 to " + MAX_READ_IOPS
                                + " such as 2000, got " + MappingReader.quote(t));
                ok = false;
            }
        } else {
            ok &= !qos.has("read-iops");
        }
        return ok ? Optional.of(new Policy.Qos(bytes, iops)) : Optional.empty();
    }

    /**
     * {@code budget}: the capacity budget of each VM at a location ({@code local} or a target of
     * the policy), as a size. Whether a budget holds one full restore point is checked where the
     * repository is known ({@code policy lint --config}, the engine at start), not here.
     */
    private static Optional<Map<String, Long>> readBudgets(
            MappingReader budget, List<String> targets, Problems problems) {
        List<String> locations = new ArrayList<>(List.of("local"));
        locations.addAll(targets);
        budget.allowOnly(locations);
        Map<String, Long> out = new java.util.TreeMap<>();
        boolean ok = true;
        for (String location : budget.keys()) {
            if (!locations.contains(location)) {
                ok = false;
                continue;
            }
            Optional<String> text = budget.string(location, SizeSyntax.EXAMPLE);
            if (text.isEmpty()) {
                ok = false;
                continue;
            }
            OptionalLong bytes = SizeSyntax.parse(text.get());
            if (bytes.isEmpty()) {
                problems.at(
                        budget.value(location).orElseThrow(),
                        budget.child(location),
                        "expected " + SizeSyntax.EXAMPLE + ", got " + MappingReader.quote(text.get()));
                ok = false;
                continue;
            }
            out.put(location, bytes.getAsLong());
        }
        return ok ? Optional.of(out) : Optional.empty();
    }

    /** The apps of {@code triggers.pre-deploy.apps}; empty when no pre-deploy trigger is given. */
    private static Optional<List<String>> readTriggers(MappingReader triggers, Problems problems) {
        triggers.allowOnly(TRIGGERS_KEYS);
        if (!triggers.has("pre-deploy")) {
            return Optional.of(List.of());
        }
        Optional<MappingReader> preDeploy = triggers.mapping("pre-deploy", "a mapping with apps");
        if (preDeploy.isEmpty()) {
            return Optional.empty();
        }
        MappingReader hook = preDeploy.get();
        hook.allowOnly(PRE_DEPLOY_KEYS);
        hook.require("apps");
        Optional<List<String>> apps = hook.strings("apps", "app name");
        if (apps.isEmpty()) {
            return Optional.empty();
        }
        if (apps.get().isEmpty()) {
            problems.at(
                    hook.value("apps").orElseThrow(),
                    hook.child("apps"),
                    "list at least one app whose pre-deploy hook snapshots these VMs, or leave out pre-deploy");
            return Optional.empty();
        }
        boolean ok = true;
        Node list = hook.value("apps").orElseThrow();
        for (int i = 0; i < apps.get().size(); i++) {
            String app = apps.get().get(i);
            if (!APP_NAME.matcher(app).matches()) {
                problems.at(
                        ((SequenceNode) list).getValue().get(i),
                        hook.child("apps") + "[" + i + "]",
                        "expected an app name of at most 100 letters, digits, '.', '_' and '-', starting with a"
                                + " letter or digit, got " + MappingReader.quote(app));
                ok = false;
            }
        }
        return ok ? apps : Optional.empty();
    }

    /**
     * {@code tiers}: named tiers, each {@code {location, keep, storage-class}}; tiers at one
     * location chain in file order (see {@link Tier}). Refused: a location that is neither {@code
     * local} nor a target of the policy; a storage class at {@code local} or a second tier there
     * (a local repository has one class); an archive class (see {@link Tier#ARCHIVE_CLASSES}) as
     * the first tier of a location, where new points are written and read by {@code list}/{@code
     * show}; two tiers in a row at one location with the same class (nothing would move).
     */
    private static Optional<Tiers> readTiers(MappingReader tiers, List<String> targets, Problems problems) {
        List<String> locations = new ArrayList<>(List.of("local"));
        locations.addAll(targets);
        List<Tier> out = new ArrayList<>();
        Map<String, Tier> lastAt = new java.util.HashMap<>();
        boolean ok = true;
        if (tiers.keys().isEmpty()) {
            problems.at(tiers.node(), tiers.path(), "list at least one tier, or leave out tiers");
            return Optional.empty();
        }
        for (String name : tiers.keys()) {
            String path = tiers.child(name);
            if (!NAME.matcher(name).matches()) {
                problems.at(
                        tiers.keyNode(name).orElseThrow(),
                        path,
                        "expected a tier name of lower-case letters, digits and '-', got " + MappingReader.quote(name));
                ok = false;
                continue;
            }
            Optional<MappingReader> m = tiers.mapping(name, "a mapping of " + String.join(", ", TIER_KEYS));
            if (m.isEmpty()) {
                ok = false;
                continue;
            }
            MappingReader tier = m.get();
            tier.allowOnly(TIER_KEYS);
            tier.require("location", "keep");
            Optional<String> location = tier.string("location", "local or a target of the policy");
            if (location.isPresent() && !locations.contains(location.get())) {
                problems.at(
                        tier.value("location").orElseThrow(),
                        tier.child("location"),
                        "expected local or a target of this policy (" + String.join(", ", locations) + "), got "
                                + MappingReader.quote(location.get()));
                location = Optional.empty();
            }
            Optional<Duration> keep = tier.value("keep").flatMap(v -> keep(tier, problems));
            Optional<String> storageClass = tier.has("storage-class")
                    ? tier.string("storage-class", "an S3 storage class such as STANDARD_IA or GLACIER")
                    : Optional.empty();
            if (storageClass.isPresent()
                    && !STORAGE_CLASS.matcher(storageClass.get()).matches()) {
                problems.at(
                        tier.value("storage-class").orElseThrow(),
                        tier.child("storage-class"),
                        "expected an S3 storage class in upper case such as STANDARD_IA, GLACIER or DEEP_ARCHIVE,"
                                + " got " + MappingReader.quote(storageClass.get()));
                storageClass = Optional.empty();
                location = Optional.empty();
            }
            if (location.isEmpty() || keep.isEmpty()) {
                ok = false;
                continue;
            }
            Tier t = new Tier(name, location.get(), storageClass, keep.get());
            Tier before = lastAt.get(t.location());
            if (t.location().equals("local") && storageClass.isPresent()) {
                problems.at(
                        tier.value("storage-class").orElseThrow(),
                        tier.child("storage-class"),
                        "local has no storage classes; leave out storage-class, or put this tier at a target");
                ok = false;
            } else if (t.location().equals("local") && before != null) {
                problems.at(
                        tier.node(),
                        path,
                        "local already has tier '" + before.name() + "' and a local repository has one storage"
                                + " class; put this tier at a target, or give '" + before.name() + "' a longer keep");
                ok = false;
            } else if (before == null && t.archive()) {
                problems.at(
                        tier.value("storage-class").orElseThrow(),
                        tier.child("storage-class"),
                        "'" + name + "' is the first tier at " + t.location() + ", where new restore points are"
                                + " written, and " + storageClass.get() + " must be restored (hours) before any read;"
                                + " put a readable tier such as {location: " + t.location() + ", keep: 30d} before it");
                ok = false;
            } else if (before != null && before.storageClass().equals(t.storageClass())) {
                problems.at(
                        tier.node(),
                        path,
                        "'" + name + "' follows '" + before.name() + "' at " + t.location() + " in the same storage"
                                + " class, so nothing would move; give it another storage-class, or merge the two"
                                + " tiers into one with the sum of their keeps");
                ok = false;
            }
            lastAt.put(t.location(), t);
            out.add(t);
        }
        return ok && problems.isEmpty() ? Optional.of(new Tiers(out)) : Optional.empty();
    }

    /** {@code keep} of a tier: a positive duration, or a whole number of 365-day years such as {@code 7y}. */
    private static Optional<Duration> keep(MappingReader tier, Problems problems) {
        Optional<String> text = tier.string("keep", "a duration such as 7d or 7y");
        if (text.isPresent() && text.get().trim().matches("\\d{1,4}y")) {
            String t = text.get().trim();
            long years = Long.parseLong(t.substring(0, t.length() - 1));
            if (years > 0) {
                return Optional.of(Duration.ofDays(365 * years));
            }
        } else if (text.isPresent()) {
            Optional<Duration> d = DurationSyntax.parse(text.get().trim());
            if (d.isPresent() && !d.get().isZero()) {
                return d;
            }
        }
        if (text.isPresent()) {
            problems.at(
                    tier.value("keep").orElseThrow(),
                    tier.child("keep"),
                    "expected a positive duration such as 7d, 12h or 7y, got " + MappingReader.quote(text.get()));
        }
        return Optional.empty();
    }

    private static Optional<Map<String, Retention>> readRetention(
            MappingReader retention, List<String> targets, Problems problems) {
        List<String> locations = new java.util.ArrayList<>(List.of("local"));
        locations.addAll(targets);
        retention.allowOnly(locations);
        Map<String, Retention> out = new java.util.TreeMap<>();
        boolean ok = true;
        for (String location : retention.keys()) {
            if (!locations.contains(location)) {
                ok = false;
                continue;
            }
            Optional<MappingReader> rule =
                    retention.mapping(location, "a mapping of " + String.join(", ", RETENTION_KEYS));
            if (rule.isEmpty()) {
                ok = false;
                continue;
            }
            Optional<Retention> r =
                    readRule(rule.get(), "leave the location out to keep every restore point", problems);
            ok &= r.isPresent();
            r.ifPresent(x -> out.put(location, x));
        }
        return ok && problems.isEmpty() ? Optional.of(out) : Optional.empty();
    }

    /** One retention rule ({@code last}, {@code hourly}, …); one that keeps nothing specific is an error. */
    private static Optional<Retention> readRule(MappingReader rule, String orElse, Problems problems) {
        rule.allowOnly(RETENTION_KEYS);
        boolean ok = true;
        int[] n = new int[RETENTION_KEYS.size()];
        for (int i = 0; i < n.length; i++) {
            String key = RETENTION_KEYS.get(i);
            if (rule.has(key)) {
                Optional<Integer> count = rule.count(key);
                ok &= count.isPresent();
                n[i] = count.orElse(0);
            }
        }
        if (!ok) {
            return Optional.empty();
        }
        Retention r = new Retention(n[0], n[1], n[2], n[3], n[4], n[5]);
        if (r.keepsAll()) {
            problems.at(
                    rule.node(),
                    rule.path(),
                    "keeps nothing specific; give at least one of " + String.join(", ", RETENTION_KEYS)
                            + " above zero, or " + orElse);
            return Optional.empty();
        }
        return Optional.of(r);
    }

    private static Optional<VmSelector> readSelector(MappingReader vms, Problems problems) {
        vms.allowOnly(VMS_KEYS);
        Optional<List<String>> names = vms.strings("names", "VM name");
        Optional<List<String>> globs = vms.strings("globs", "VM name pattern");
        Optional<Map<String, String>> labels = vms.stringMap("labels", "a mapping of label names to values");
        VmSelector selector = new VmSelector(names.orElse(List.of()), globs.orElse(List.of()), labels.orElse(Map.of()));
        boolean wellFormed = (names.isPresent() || !vms.has("names"))
                && (globs.isPresent() || !vms.has("globs"))
                && (labels.isPresent() || !vms.has("labels"));
        if (!wellFormed) {
            return Optional.empty();
        }
        if (selector.isEmpty()) {
            problems.at(vms.node(), vms.path(), "select at least one VM with names, globs or labels");
            return Optional.empty();
        }
        return Optional.of(selector);
    }

    private Optional<Schedule> readSchedule(MappingReader schedule, Problems problems) {
        schedule.allowOnly(SCHEDULE_KEYS);
        boolean hasInterval = schedule.has("interval");
        boolean hasCron = schedule.has("cron");
        if (hasInterval == hasCron) {
            Node at = hasCron ? schedule.keyNode("cron").orElseThrow() : schedule.node();
            problems.at(
                    at,
                    hasCron ? schedule.child("cron") : schedule.path(),
                    hasCron
                            ? "give either 'interval' or 'cron', not both"
                            : "expected exactly one of 'interval' or 'cron'");
        }
        Optional<Duration> jitter = schedule.has("jitter") ? schedule.duration("jitter") : Optional.of(Duration.ZERO);

        Optional<Duration> interval = schedule.duration("interval");
        if (interval.isPresent() && interval.get().compareTo(MIN_INTERVAL) < 0) {
            problems.at(
                    schedule.value("interval").orElseThrow(),
                    schedule.child("interval"),
                    "must be at least " + DurationSyntax.format(MIN_INTERVAL) + ", got "
                            + DurationSyntax.format(interval.get()));
            interval = Optional.empty();
        }
        Optional<String> cron = schedule.string("cron", "a Quartz cron expression such as \"0 0/15 * * * ?\"")
                .flatMap(c -> checkCron(c, schedule.value("cron").orElseThrow(), schedule.child("cron"), problems));

        Optional<Duration> limit = interval.or(() -> cron.flatMap(this::shortestCronGap));
        if (jitter.isPresent() && limit.isPresent() && jitter.get().compareTo(limit.get()) >= 0) {
            problems.at(
                    schedule.value("jitter").orElseThrow(),
                    schedule.child("jitter"),
                    "must be less than the " + (interval.isPresent() ? "interval" : "shortest gap between firings")
                            + " (" + DurationSyntax.format(limit.get()) + "), got "
                            + DurationSyntax.format(jitter.get()));
            return Optional.empty();
        }
        if (jitter.isEmpty() || hasInterval == hasCron) {
            return Optional.empty();
        }
        if (interval.isPresent()) {
            return Optional.of(new Schedule.Interval(interval.get(), jitter.get()));
        }
        return cron.map(c -> new Schedule.Cron(c, jitter.get()));
    }

    private Optional<String> checkCron(String expression, Node at, String keyPath, Problems problems) {
        CronExpression cron;
        try {
            cron = new CronExpression(expression);
        } catch (ParseException | RuntimeException e) {
            problems.at(
                    at,
                    keyPath,
                    "not a valid Quartz cron expression (second minute hour day-of-month month day-of-week [year]): "
                            + e.getMessage());
            return Optional.empty();
        }
        cron.setTimeZone(UTC);
        if (nextFire(cron, Date.from(clock.instant())).isEmpty()) {
            problems.at(at, keyPath, "the cron expression never fires after " + clock.instant());
            return Optional.empty();
        }
        return Optional.of(expression);
    }

    /** The shortest gap between the next few firings of a valid expression, if it fires twice. */
    private Optional<Duration> shortestCronGap(String expression) {
        CronExpression cron;
        try {
            cron = new CronExpression(expression);
        } catch (ParseException e) {
            return Optional.empty(); // checked before; not reached
        }
        cron.setTimeZone(UTC);
        Optional<Date> previous = nextFire(cron, Date.from(clock.instant()));
        Duration shortest = null;
        for (int i = 0; i < CRON_GAPS_CHECKED && previous.isPresent(); i++) {
            Optional<Date> next = nextFire(cron, previous.get());
            if (next.isEmpty()) {
                break;
            }
            Duration gap =
                    Duration.between(previous.get().toInstant(), next.get().toInstant());
            shortest = shortest == null || gap.compareTo(shortest) < 0 ? gap : shortest;
            previous = next;
        }
        return Optional.ofNullable(shortest);
    }

    private static Optional<Date> nextFire(CronExpression cron, Date after) {
        try {
            return Optional.ofNullable(cron.getNextValidTimeAfter(after));
        } catch (RuntimeException e) { // Quartz fails on some odd expressions it accepted
            return Optional.empty();
        }
    }

    /**
     * A problem found outside the parser (such as a budget checked against a repository) at the value
     * of {@code keyPath} in {@code file}, such as {@code [budget, local]}: at its line and column when
     * the file still holds it, else at line 0.
     */
    public static PolicyProblem problemAt(Path file, List<String> keyPath, String message) {
        int line = 0;
        int column = 0;
        try {
            Node node = compose(Files.readString(file), new Problems(file)).orElse(null);
            for (String key : keyPath) {
                Node next = null;
                if (node instanceof MappingNode m) {
                    for (var tuple : m.getValue()) {
                        if (tuple.getKeyNode() instanceof org.yaml.snakeyaml.nodes.ScalarNode k
                                && k.getValue().equals(key)) {
                            next = tuple.getValueNode();
                        }
                    }
                }
                node = next;
            }
            if (node != null) {
                line = node.getStartMark().getLine() + 1;
                column = node.getStartMark().getColumn() + 1;
            }
        } catch (IOException | RuntimeException e) {
            // the file changed or went away since it was parsed: the problem stands without a position
        }
        return new PolicyProblem(file, line, column, String.join(".", keyPath), message);
    }

    // ---- a directory ----------------------------------------------------------------------------

    private static List<PolicyProblem> duplicateNames(List<FileResult> results) {
        Map<String, List<FileResult>> byName = new LinkedHashMap<>();
        for (FileResult r : results) {
            if (r.name() != null) {
                byName.computeIfAbsent(r.name().name(), n -> new ArrayList<>()).add(r);
            }
        }
        List<PolicyProblem> problems = new ArrayList<>();
        for (List<FileResult> same : byName.values()) {
            if (same.size() < 2) {
                continue;
            }
            for (FileResult r : same) {
                List<String> others = same.stream()
                        .filter(o -> o != r)
                        .map(o -> o.file() + ":" + o.name().line() + ":"
                                + o.name().column())
                        .toList();
                problems.add(new PolicyProblem(
                        r.file(),
                        r.name().line(),
                        r.name().column(),
                        "name",
                        "duplicate policy name " + MappingReader.quote(r.name().name()) + "; also defined at "
                                + String.join(", ", others)));
            }
        }
        return problems;
    }

    /**
     * One VM, one mode: a VM that a {@code mode: continuous} policy and a scheduled policy could both
     * select is an error at each of the two policies' names (ADR 19: snapshots of a mirrored VM, whose
     * root node is the mirror's filter, are not supported). Decided by a witness: a VM name one
     * selector lists or its glob spells that the other matches too, with labels both can carry.
     */
    private static List<PolicyProblem> continuousOverlaps(List<FileResult> results) {
        List<FileResult> ok = results.stream()
                .filter(r -> r.policy().isPresent() && r.name() != null)
                .toList();
        List<PolicyProblem> problems = new ArrayList<>();
        for (FileResult c : ok) {
            if (!c.policy().get().isContinuous()) {
                continue;
            }
            for (FileResult s : ok) {
                if (s.policy().get().isContinuous()) {
                    continue;
                }
                Optional<String> vm =
                        c.policy().get().vms().overlapWitness(s.policy().get().vms());
                if (vm.isEmpty()) {
                    continue;
                }
                String both = "policy " + MappingReader.quote(c.name().name()) + " (mode: continuous, " + c.file()
                        + ":" + c.name().line() + ":" + c.name().column() + ") and policy "
                        + MappingReader.quote(s.name().name()) + " (scheduled, " + s.file() + ":"
                        + s.name().line()
                        + ":" + s.name().column() + ") both select VM " + MappingReader.quote(vm.get())
                        + "; a VM is either mirrored or snapshotted: narrow one policy's vms (names, or a label"
                        + " such as protection: continuous)";
                problems.add(
                        new PolicyProblem(c.file(), c.name().line(), c.name().column(), "vms", both));
                problems.add(
                        new PolicyProblem(s.file(), s.name().line(), s.name().column(), "vms", both));
            }
        }
        return problems;
    }

    /** Where a file's policy name is, for the duplicate check. */
    private record NameAt(String name, int line, int column) {
        NameAt(String name, Mark mark) {
            this(name, mark.getLine() + 1, mark.getColumn() + 1);
        }
    }

    /** What reading one file gave: a policy when there were no problems. */
    private record FileResult(Path file, Optional<Policy> policy, List<PolicyProblem> problems, NameAt name) {
        static FileResult failed(Path file, String message) {
            return new FileResult(file, Optional.empty(), List.of(new PolicyProblem(file, 0, 0, "", message)), null);
        }
    }
}
