package io.tidemark.policies;

import static java.nio.charset.StandardCharsets.UTF_8;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.tuple;
import static org.junit.jupiter.api.Assertions.assertThrows;

import io.tidemark.core.event.ConsistencyPolicy;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.time.ZoneOffset;
import java.util.Arrays;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class PolicyParserTest {
    static final Path FILE = Path.of("policies/web.yaml");
    static final Clock CLOCK = Clock.fixed(Instant.parse("2025-01-01T00:00:00Z"), ZoneOffset.UTC);

    final PolicyParser parser = new PolicyParser(CLOCK);

    private Policy parse(String yaml) {
        return parser.parse(FILE, yaml.getBytes(UTF_8));
    }

    private List<String> problems(String yaml) {
        return problems(yaml.getBytes(UTF_8));
    }

    private List<String> problems(byte[] yaml) {
        PolicyException e = assertThrows(PolicyException.class, () -> parser.parse(FILE, yaml));
        return e.problems().stream().map(PolicyProblem::toString).toList();
    }

    @Test
    void parsesAFullPolicy() {
        Policy p = parse(
                """
                name: web-tier
                vms:
                  names: [web-1, web-2]
                  globs: ["web-*"]
                  labels: {tier: web}
                schedule:
                  interval: 1h30m
                  jitter: 30s
                consistency: application-preferred
                rpo: 2h
                rto: 1h
                full-every: 7d
                targets: [offsite-s3, dr-ceph]
                """);
        assertThat(p.name()).isEqualTo("web-tier");
        assertThat(p.vms())
                .isEqualTo(new VmSelector(List.of("web-1", "web-2"), List.of("web-*"), Map.of("tier", "web")));
        assertThat(p.schedule()).isEqualTo(new Schedule.Interval(Duration.ofMinutes(90), Duration.ofSeconds(30)));
        assertThat(p.consistency()).isEqualTo(ConsistencyPolicy.APPLICATION_PREFERRED);
        assertThat(p.rpo()).isEqualTo(Duration.ofHours(2));
        assertThat(p.rto()).contains(Duration.ofHours(1));
        assertThat(p.fullEvery()).contains(Duration.ofDays(7));
        assertThat(p.targets()).containsExactly("offsite-s3", "dr-ceph");
        assertThat(p.source()).contains(FILE);
    }

    @Test
    void targetsMayPromiseTheirOwnRpoAndQosLimitsTheReadBandwidth() {
        Policy p = parse(
                """
                name: web-tier
                vms: {names: [web-1]}
                schedule: {interval: 15m}
                rpo: 1h
                targets:
                  - offsite-s3
                  - {name: dr-ceph, rpo: 4h}
                qos:
                  read-bandwidth: 50MiB/s
                """);
        assertThat(p.targets()).containsExactly("offsite-s3", "dr-ceph");
        assertThat(p.rpoAt("local")).isEqualTo(Duration.ofHours(1));
        assertThat(p.rpoAt("offsite-s3")).isEqualTo(Duration.ofHours(1));
        assertThat(p.rpoAt("dr-ceph")).isEqualTo(Duration.ofHours(4));
        assertThat(p.qos().readBytesPerSecond()).hasValue(50L << 20);
    }

    @Test
    void badTargetEntriesAndQosAreReportedWithTheirPaths() {
        assertThat(
                        problems(
                                """
                        name: web
                        vms: {names: [web-1]}
                        schedule: {interval: 15m}
                        rpo: 1h
                        targets:
                          - {name: dr, rpo: soon, region: eu}
                          - {rpo: 4h}
                          - dr
                        qos: {read-bandwidth: fast, iops: 10}
                        """))
                .containsExactly(
                        "policies/web.yaml:6:21: targets[0].rpo: expected a duration such as 15m or 1h, got \"soon\"",
                        "policies/web.yaml:6:27: targets[0].region: unknown key 'region'; expected one of: name, rpo",
                        "policies/web.yaml:7:5: targets[1].name: missing required key 'name'",
                        "policies/web.yaml:8:5: targets[2]: \"dr\" is listed twice",
                        "policies/web.yaml:9:23: qos.read-bandwidth: expected a positive rate such as 20MiB/s or 500KB/s,"
                                + " got \"fast\"",
                        "policies/web.yaml:9:29: qos.iops: unknown key 'iops'; expected one of: read-bandwidth,"
                                + " read-iops");
    }

    @Test
    void qosLimitsReadRequestsPerSecondBesideTheBandwidth() {
        Policy p = parse(
                """
                name: db
                vms: {names: [db-1]}
                schedule: {interval: 15m}
                rpo: 1h
                qos: {read-bandwidth: 50MiB/s, read-iops: 2000}
                """);
        assertThat(p.qos().readBytesPerSecond()).hasValue(50L << 20);
        assertThat(p.qos().readIopsPerSecond()).hasValue(2000);
        Policy iopsOnly = parse(
                """
                name: db
                vms: {names: [db-1]}
                schedule: {interval: 15m}
                rpo: 1h
                qos: {read-iops: 300}
                """);
        assertThat(iopsOnly.qos().readBytesPerSecond()).isEmpty();
        assertThat(iopsOnly.qos().readIopsPerSecond()).hasValue(300);
    }

    @Test
    void badReadIopsAreReportedAtTheirValue() {
        assertThat(
                        problems(
                                """
                        name: db
                        vms: {names: [db-1]}
                        schedule: {interval: 15m}
                        rpo: 1h
                        qos:
                          read-iops: 0
                        """))
                .containsExactly("policies/web.yaml:6:14: qos.read-iops: expected a whole number of read requests per"
                        + " second from 1 to 10000000 such as 2000, got \"0\"");
        assertThat(
                        problems(
                                """
                        name: db
                        vms: {names: [db-1]}
                        schedule: {interval: 15m}
                        rpo: 1h
                        qos: {read-iops: lots}
                        """))
                .containsExactly("policies/web.yaml:5:18: qos.read-iops: expected a whole number of read requests per"
                        + " second from 1 to 10000000 such as 2000, got \"lots\"");
    }

    @Test
    void budgetsAreSizesPerLocationOfThePolicy() {
        Policy p = parse(
                """
                name: db
                vms: {names: [db-1]}
                schedule: {interval: 15m}
                rpo: 1h
                targets: [offsite]
                budget: {local: 50GiB, offsite: 1.5TB}
                """);
        assertThat(p.budgetAt("local")).hasValue(50L << 30);
        assertThat(p.budgetAt("offsite")).hasValue(1_500_000_000_000L);
        assertThat(p.budgetAt("elsewhere")).isEmpty();
        assertThat(parse(
                                """
                name: db
                vms: {names: [db-1]}
                schedule: {interval: 15m}
                rpo: 1h
                """)
                        .budgets())
                .isEmpty();
    }

    @Test
    void badBudgetsAreReportedWithTheirPaths() {
        assertThat(
                        problems(
                                """
                        name: db
                        vms: {names: [db-1]}
                        schedule: {interval: 15m}
                        rpo: 1h
                        targets: [offsite]
                        budget:
                          local: lots
                          offsite: 0GiB
                          dr: 10GiB
                        """))
                .containsExactly(
                        "policies/web.yaml:7:10: budget.local: expected a positive size such as 50GiB or 500MB, got"
                                + " \"lots\"",
                        "policies/web.yaml:8:12: budget.offsite: expected a positive size such as 50GiB or 500MB,"
                                + " got \"0GiB\"",
                        "policies/web.yaml:9:3: budget.dr: unknown key 'dr'; expected one of: local, offsite");
    }

    @Test
    void appliesDefaults() {
        Policy p = parse(
                """
                name: minimal
                vms: {labels: {tier: db}}
                schedule: {cron: "0 */15 * * * ?"}
                rpo: 30m
                """);
        assertThat(p.schedule()).isEqualTo(Schedule.Cron.of("0 */15 * * * ?"));
        assertThat(p.consistency()).isEqualTo(ConsistencyPolicy.CRASH);
        assertThat(p.rto()).isEmpty();
        assertThat(p.fullEvery()).isEmpty();
        assertThat(p.targets()).isEmpty();
    }

    @Test
    void badDurationNamesFileLineColumnAndKeyPath() {
        PolicyException e = assertThrows(
                PolicyException.class,
                () -> parse(
                        """
                        name: web
                        vms: {names: [web-1]}
                        schedule:
                          interval: 15 minutes
                        rpo: 30m
                        """));
        String expected =
                "policies/web.yaml:4:13: schedule.interval: expected a duration such as 15m or 1h, got \"15 minutes\"";
        assertThat(e.getMessage()).isEqualTo(expected);
        assertThat(e).hasToString(expected);
        assertThat(e.problems())
                .containsExactly(new PolicyProblem(
                        FILE, 4, 13, "schedule.interval", "expected a duration such as 15m or 1h, got \"15 minutes\""));
    }

    @Test
    void durationWithoutUnitSaysSo() {
        assertThat(
                        problems(
                                """
                        name: web
                        vms: {names: [web-1]}
                        schedule: {interval: 30}
                        rpo: 30m
                        """))
                .containsExactly("policies/web.yaml:3:22: schedule.interval: expected a duration such as 15m or 1h,"
                        + " got \"30\" (a unit is required: s, m, h or d)");
    }

    @Test
    void unknownKeySuggestsTheClosestKnownKey() {
        assertThat(
                        problems(
                                """
                        name: web
                        vms: {names: [web-1]}
                        schedul:
                          intervall: 15m
                        rpo: 30m
                        """))
                .containsExactly(
                        "policies/web.yaml:1:1: schedule: missing required key 'schedule'",
                        "policies/web.yaml:3:1: schedul: unknown key 'schedul'; did you mean 'schedule'?");
    }

    @Test
    void unknownNestedKeySuggestsTheClosestKnownKey() {
        assertThat(
                        problems(
                                """
                        name: web
                        vms: {names: [web-1]}
                        schedule:
                          interval: 15m
                          jiter: 1m
                        rpo: 30m
                        fullEvery: 1d
                        """))
                .containsExactly(
                        "policies/web.yaml:5:3: schedule.jiter: unknown key 'jiter'; did you mean 'jitter'?",
                        "policies/web.yaml:7:1: fullEvery: unknown key 'fullEvery'; did you mean 'full-every'?");
    }

    @Test
    void unknownKeyFarFromAnyListsTheKnownKeys() {
        assertThat(
                        problems(
                                """
                        name: web
                        vms: {names: [web-1]}
                        schedule: {interval: 15m}
                        rpo: 30m
                        colour: blue
                        """))
                .containsExactly(
                        "policies/web.yaml:5:1: colour: unknown key 'colour'; expected one of: name, vms,"
                                + " schedule, consistency, rpo, rto, full-every, targets, retention, triggers, qos, budget, tiers, mode, dr");
    }

    @Test
    void wrongTypesAreReportedAtTheValue() {
        assertThat(
                        problems(
                                """
                        name: [web]
                        vms: [web-1]
                        schedule: {interval: 15m}
                        rpo: {minutes: 30}
                        targets: offsite-s3
                        """))
                .containsExactly(
                        "policies/web.yaml:1:7: name: expected a policy name, got a list",
                        "policies/web.yaml:2:6: vms: expected a mapping with names, globs or labels, got a list",
                        "policies/web.yaml:4:6: rpo: expected a duration such as 15m or 1h, got a mapping",
                        "policies/web.yaml:5:10: targets: expected a list of target names or {name, rpo} mappings, got \"offsite-s3\"");
    }

    @Test
    void wrongItemTypesNameTheIndex() {
        assertThat(
                        problems(
                                """
                        name: web
                        vms:
                          names: [web-1, {a: b}, ""]
                          labels: {tier: [web], "": x}
                        schedule: {interval: 15m}
                        rpo: 30m
                        """))
                .containsExactly(
                        "policies/web.yaml:3:18: vms.names[1]: expected VM name, got a mapping",
                        "policies/web.yaml:3:26: vms.names[2]: expected VM name, got an empty string",
                        "policies/web.yaml:4:18: vms.labels.tier: expected a label value, got a list",
                        "policies/web.yaml:4:25: vms.labels: expected a label name, got an empty string");
    }

    @Test
    void missingRequiredKeysAreReportedAtTheParentMapping() {
        assertThat(
                        problems(
                                """
                        # a policy without most of its keys
                        name: web
                        schedule:
                          jitter: 10s
                        """))
                .containsExactly(
                        "policies/web.yaml:2:1: vms: missing required key 'vms'",
                        "policies/web.yaml:2:1: rpo: missing required key 'rpo'",
                        "policies/web.yaml:4:3: schedule: expected exactly one of 'interval' or 'cron'");
    }

    @Test
    void requiredKeyWithoutValue() {
        assertThat(
                        problems(
                                """
                        name: web
                        vms: {names: [web-1]}
                        schedule: {interval: 15m}
                        rpo:
                        """))
                .containsExactly("policies/web.yaml:4:5: rpo: 'rpo' needs a value");
    }

    @Test
    void emptySelectorIsAnError() {
        assertThat(
                        problems(
                                """
                        name: web
                        vms:
                          names: []
                        schedule: {interval: 15m}
                        rpo: 30m
                        """))
                .containsExactly("policies/web.yaml:3:3: vms: select at least one VM with names, globs or labels");
    }

    @Test
    void badEnumListsTheAllowedValues() {
        assertThat(
                        problems(
                                """
                        name: web
                        vms: {names: [web-1]}
                        schedule: {interval: 15m}
                        consistency: app
                        rpo: 30m
                        """))
                .containsExactly("policies/web.yaml:4:14: consistency: expected one of crash, application-preferred,"
                        + " application-required, got \"app\"");
    }

    @Test
    void badNameIsRejected() {
        assertThat(
                        problems(
                                """
                        name: Web_Tier
                        vms: {names: [web-1]}
                        schedule: {interval: 15m}
                        rpo: 30m
                        """))
                .containsExactly("policies/web.yaml:1:7: name: expected lower-case letters, digits and '-' only,"
                        + " got \"Web_Tier\"");
    }

    @Test
    void scheduleRules() {
        assertThat(
                        problems(
                                """
                        name: web
                        vms: {names: [web-1]}
                        schedule:
                          interval: 5s
                          jitter: 1m
                        rpo: 0s
                        """))
                .containsExactly(
                        "policies/web.yaml:4:13: schedule.interval: must be at least 10s, got 5s",
                        "policies/web.yaml:6:6: rpo: must be greater than zero");
        assertThat(
                        problems(
                                """
                        name: web
                        vms: {names: [web-1]}
                        schedule:
                          interval: 15m
                          jitter: 15m
                        rpo: 30m
                        """))
                .containsExactly(
                        "policies/web.yaml:5:11: schedule.jitter: must be less than the interval (15m), got 15m");
        assertThat(
                        problems(
                                """
                        name: web
                        vms: {names: [web-1]}
                        schedule:
                          interval: 15m
                          cron: "0 * * * * ?"
                        rpo: 30m
                        """))
                .containsExactly("policies/web.yaml:5:3: schedule.cron: give either 'interval' or 'cron', not both");
    }

    @Test
    void cronRules() {
        assertThat(
                        problems(
                                """
                        name: web
                        vms: {names: [web-1]}
                        schedule: {cron: "0 0 25 * * ?"}
                        rpo: 30m
                        """))
                .singleElement()
                .asString()
                .startsWith("policies/web.yaml:3:18: schedule.cron: not a valid Quartz cron expression");
        assertThat(
                        problems(
                                """
                        name: web
                        vms: {names: [web-1]}
                        schedule: {cron: "0 0 0 1 1 ? 2001"}
                        rpo: 30m
                        """))
                .containsExactly("policies/web.yaml:3:18: schedule.cron: the cron expression never fires after"
                        + " 2025-01-01T00:00:00Z");
        assertThat(
                        problems(
                                """
                        name: web
                        vms: {names: [web-1]}
                        schedule: {cron: "0 0 1,2 * * ?", jitter: 1h}
                        rpo: 30m
                        """))
                .containsExactly("policies/web.yaml:3:43: schedule.jitter: must be less than the shortest gap between"
                        + " firings (1h), got 1h");
    }

    @Test
    void duplicateKeysAndDuplicateListItems() {
        assertThat(
                        problems(
                                """
                        name: web
                        vms: {names: [web-1, web-1]}
                        schedule: {interval: 15m}
                        rpo: 30m
                        rpo: 1h
                        """))
                .containsExactly(
                        "policies/web.yaml:2:22: vms.names[1]: \"web-1\" is listed twice",
                        "policies/web.yaml:5:1: rpo: duplicate key 'rpo'; first given at line 4");
    }

    @Test
    void yamlSyntaxErrorUsesTheProblemMark() {
        assertThat(
                        problems(
                                """
                        name: web
                        vms: {names: [web-1]
                        schedule: {interval: 15m}
                        """))
                .containsExactly("policies/web.yaml:3:1: invalid YAML: expected ',' or '}', but got <scalar>");
        assertThat(problems("name: web\n  rpo: 30m\n"))
                .containsExactly("policies/web.yaml:2:6: invalid YAML: mapping values are not allowed here");
    }

    @Test
    void emptyFileAndCommentOnlyFile() {
        String expected = "policies/web.yaml:1:1: the file is empty; a policy file holds one mapping with name, vms,"
                + " schedule and rpo";
        assertThat(problems("")).containsExactly(expected);
        assertThat(problems("# nothing here yet\n\n")).containsExactly(expected);
    }

    @Test
    void fileThatIsNotAMapping() {
        assertThat(problems("- name: web\n- name: db\n"))
                .containsExactly("policies/web.yaml:1:1: expected a mapping of policy keys (name, vms, schedule, rpo,"
                        + " ...), got a list");
        assertThat(problems("\n  just words\n"))
                .containsExactly("policies/web.yaml:2:3: expected a mapping of policy keys (name, vms, schedule, rpo,"
                        + " ...), got \"just words\"");
    }

    @Test
    void oneDocumentPerFile() {
        assertThat(
                        problems(
                                """
                        name: web
                        vms: {names: [web-1]}
                        schedule: {interval: 15m}
                        rpo: 30m
                        ---
                        name: db
                        """))
                .containsExactly("policies/web.yaml:6:1: a policy file holds one policy; found a second YAML document"
                        + " (split it into another file)");
    }

    @Test
    void invalidUtf8IsPositioned() {
        byte[] bytes = "name: web\nvms: {names: [w?b]}\n".getBytes(UTF_8);
        bytes[25] = (byte) 0xff;
        assertThat(problems(bytes))
                .containsExactly("policies/web.yaml:2:16: the file is not valid UTF-8 (byte offset 25)");
    }

    @Test
    void controlCharactersAreRefused() {
        assertThat(problems("name: web\nrpo: 3\u00010m\n"))
                .containsExactly("policies/web.yaml:2:7: invalid YAML: character U+0001 is not allowed");
    }

    @Test
    void oversizedFilesAreRefused() {
        byte[] big = new byte[PolicyParser.MAX_FILE_BYTES + 1];
        Arrays.fill(big, (byte) ' ');
        assertThat(problems(big)).containsExactly("policies/web.yaml: file is larger than 1048576 bytes");
    }

    @Test
    void aliasBombsAreRefused() {
        StringBuilder yaml = new StringBuilder("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for (int i = 1; i < 30; i++) {
            String p = "*a" + (i - 1);
            yaml.append("a").append(i).append(": &a").append(i).append(" [");
            yaml.append(String.join(", ", Collections.nCopies(10, p))).append("]\n");
        }
        assertThat(problems(yaml.toString()))
                .singleElement()
                .asString()
                .startsWith("policies/web.yaml: invalid YAML: Number of aliases for non-scalar nodes exceeds");
    }

    @Test
    void reportsAllProblemsOfAFileAtOnceInPositionOrder() {
        assertThat(
                        problems(
                                """
                        name: Web
                        vms: {nmes: [web-1]}
                        schedule: {interval: 2s}
                        consistency: strong
                        rpo: soon
                        targets: [a, a]
                        """))
                .containsExactly(
                        "policies/web.yaml:1:7: name: expected lower-case letters, digits and '-' only, got \"Web\"",
                        "policies/web.yaml:2:6: vms: select at least one VM with names, globs or labels",
                        "policies/web.yaml:2:7: vms.nmes: unknown key 'nmes'; did you mean 'names'?",
                        "policies/web.yaml:3:22: schedule.interval: must be at least 10s, got 2s",
                        "policies/web.yaml:4:14: consistency: expected one of crash, application-preferred,"
                                + " application-required, got \"strong\"",
                        "policies/web.yaml:5:6: rpo: expected a duration such as 15m or 1h, got \"soon\"",
                        "policies/web.yaml:6:14: targets[1]: \"a\" is listed twice");
    }

    @Test
    void loadsADirectoryInNameOrderSkippingOtherFiles(@TempDir Path dir) throws Exception {
        write(dir, "b.yml", valid("beta"));
        write(dir, "a.yaml", valid("alpha"));
        write(dir, "README.md", "not a policy");
        write(dir, ".#a.yaml", "editor lock file");
        Files.createDirectory(dir.resolve("sub.yaml"));
        PolicySet set = parser.loadDirectory(dir);
        assertThat(set.names()).containsExactly("alpha", "beta");
        assertThat(set.find("beta").orElseThrow().source()).contains(dir.resolve("b.yml"));
    }

    @Test
    void duplicateNamesAcrossADirectoryPointAtBothFiles(@TempDir Path dir) throws Exception {
        write(dir, "a.yaml", valid("web"));
        write(dir, "b.yaml", "# the same name again\n" + valid("web"));
        PolicyException e = assertThrows(PolicyException.class, () -> parser.loadDirectory(dir));
        assertThat(e.problems())
                .containsExactly(
                        new PolicyProblem(
                                dir.resolve("a.yaml"),
                                1,
                                7,
                                "name",
                                "duplicate policy name \"web\"; also defined at " + dir.resolve("b.yaml") + ":2:7"),
                        new PolicyProblem(
                                dir.resolve("b.yaml"),
                                2,
                                7,
                                "name",
                                "duplicate policy name \"web\"; also defined at " + dir.resolve("a.yaml") + ":1:7"));
    }

    @Test
    void reportsTheProblemsOfEveryFileOfADirectory(@TempDir Path dir) throws Exception {
        write(dir, "a.yaml", valid("alpha").replace("rpo: 30m", "rpo: 30"));
        write(dir, "b.yaml", valid("beta"));
        write(dir, "c.yaml", "");
        PolicyException e = assertThrows(PolicyException.class, () -> parser.loadDirectory(dir));
        assertThat(e.problems())
                .extracting(PolicyProblem::file, PolicyProblem::line, PolicyProblem::keyPath)
                .containsExactly(tuple(dir.resolve("a.yaml"), 4, "rpo"), tuple(dir.resolve("c.yaml"), 1, ""));
        assertThat(e.getMessage()).contains("\n");
    }

    @Test
    void missingDirectoryAndUnreadableFile(@TempDir Path dir) {
        Path missing = dir.resolve("nope");
        PolicyException e = assertThrows(PolicyException.class, () -> parser.loadDirectory(missing));
        assertThat(e).hasToString(missing + ": not a directory, or it does not exist");
        PolicyException f = assertThrows(PolicyException.class, () -> parser.parseFile(missing.resolve("x.yaml")));
        assertThat(f.problems()).singleElement().satisfies(p -> {
            assertThat(p.line()).isZero();
            assertThat(p.message()).startsWith("cannot read the file: NoSuchFileException");
        });
    }

    @Test
    void emptyDirectoryIsAnEmptySet(@TempDir Path dir) {
        assertThat(parser.loadDirectory(dir).isEmpty()).isTrue();
    }

    @Test
    void policySetRefusesDuplicateNames() {
        Policy a = Policy.of(
                "a",
                VmSelector.ofNames("x"),
                Schedule.Interval.every(Duration.ofMinutes(1)),
                Duration.ofHours(1),
                List.of());
        assertThrows(IllegalArgumentException.class, () -> PolicySet.of(a, a));
        assertThat(PolicySet.of(a).find("a")).isEqualTo(Optional.of(a));
    }

    static String valid(String name) {
        return "name: " + name + "\nvms: {names: [web-1]}\nschedule: {interval: 15m}\nrpo: 30m\n";
    }

    private static void write(Path dir, String name, String content) throws Exception {
        Files.writeString(dir.resolve(name), content);
    }

    @Test
    void retentionPerLocationIsParsedAndChecked() {
        assertThat(
                        problems(
                                """
                        name: web
                        vms: {names: [web-1]}
                        schedule: {interval: 15m}
                        rpo: 30m
                        targets: [offsite]
                        retention:
                          local: {last: 4, daily: 7}
                          offsite: {daily: 30, monthly: -1}
                          elsewhere: {last: 1}
                        """))
                .containsExactly(
                        "policies/web.yaml:8:33: retention.offsite.monthly: expected a whole number from 0 to 100000,"
                                + " got \"-1\"",
                        "policies/web.yaml:9:3: retention.elsewhere: unknown key 'elsewhere'; expected one of: local,"
                                + " offsite");
    }

    @Test
    void preDeployTriggerListsApps() {
        Policy p = parse(
                """
                name: shop
                vms: {labels: {app: shop}}
                schedule: {interval: 1h}
                rpo: 2h
                triggers:
                  pre-deploy:
                    apps: [shop, checkout.v2]
                """);
        assertThat(p.preDeployApps()).containsExactly("shop", "checkout.v2");
        assertThat(p.triggeredBeforeDeployOf("checkout.v2")).isTrue();
        assertThat(p.triggeredBeforeDeployOf("web")).isFalse();
    }

    @Test
    void noTriggersMeansNoPreDeployApps() {
        Policy p = parse(
                """
                name: web
                vms: {names: [web-1]}
                schedule: {interval: 15m}
                rpo: 30m
                triggers:
                """);
        assertThat(p.preDeployApps()).isEmpty();
        assertThat(Policy.of(
                                "web",
                                VmSelector.ofNames("web-1"),
                                Schedule.Interval.every(Duration.ofHours(1)),
                                Duration.ofHours(2),
                                List.of())
                        .preDeployApps())
                .isEmpty();
    }

    @Test
    void preDeployTriggerProblemsNameTheKeyPath() {
        assertThat(
                        problems(
                                """
                        name: web
                        vms: {names: [web-1]}
                        schedule: {interval: 15m}
                        rpo: 30m
                        triggers:
                          pre-deploy:
                            apps: [shop, "bad app", shop]
                            app: [x]
                          on-push: {}
                        """))
                .containsExactly(
                        "policies/web.yaml:7:29: triggers.pre-deploy.apps[2]: \"shop\" is listed twice",
                        "policies/web.yaml:8:5: triggers.pre-deploy.app: unknown key 'app'; did you mean 'apps'?",
                        "policies/web.yaml:9:3: triggers.on-push: unknown key 'on-push'; expected one of: pre-deploy");
        assertThat(
                        problems(
                                """
                        name: web
                        vms: {names: [web-1]}
                        schedule: {interval: 15m}
                        rpo: 30m
                        triggers:
                          pre-deploy:
                            apps: [shop, "bad app", "-x"]
                        """))
                .containsExactly(
                        "policies/web.yaml:7:18: triggers.pre-deploy.apps[1]: expected an app name of at most 100"
                                + " letters, digits, '.', '_' and '-', starting with a letter or digit, got \"bad app\"",
                        "policies/web.yaml:7:29: triggers.pre-deploy.apps[2]: expected an app name of at most 100"
                                + " letters, digits, '.', '_' and '-', starting with a letter or digit, got \"-x\"");
    }

    @Test
    void preDeployTriggerShapes() {
        String head =
                """
                name: web
                vms: {names: [web-1]}
                schedule: {interval: 15m}
                rpo: 30m
                """;
        assertThat(problems(head + "triggers: [pre-deploy]\n"))
                .containsExactly("policies/web.yaml:5:11: triggers: expected a mapping with pre-deploy, got a list");
        assertThat(problems(head + "triggers: {pre-deploy: shop}\n"))
                .containsExactly(
                        "policies/web.yaml:5:24: triggers.pre-deploy: expected a mapping with apps, got \"shop\"");
        assertThat(problems(head + "triggers: {pre-deploy: {}}\n"))
                .containsExactly("policies/web.yaml:5:24: triggers.pre-deploy.apps: missing required key 'apps'");
        assertThat(problems(head + "triggers: {pre-deploy: {apps: []}}\n"))
                .containsExactly("policies/web.yaml:5:31: triggers.pre-deploy.apps: list at least one app whose"
                        + " pre-deploy hook snapshots these VMs, or leave out pre-deploy");
        assertThat(problems(head + "triggers: {pre-deploy: {apps: shop}}\n"))
                .containsExactly("policies/web.yaml:5:31: triggers.pre-deploy.apps: expected a list of app names,"
                        + " got \"shop\"");
    }
}
