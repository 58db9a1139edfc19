package io.tidemark.policies;

import static java.nio.charset.StandardCharsets.UTF_8;
import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.time.ZoneOffset;
import java.util.List;
import java.util.Optional;
import org.junit.jupiter.api.Test;

class TiersTest {
    static final Path FILE = Path.of("policies/db.yaml");
    static final Clock CLOCK = Clock.fixed(Instant.parse("2025-01-01T00:00:00Z"), ZoneOffset.UTC);
    static final String HEAD =
            """
            name: db
            vms: {names: [db-1]}
            schedule: {interval: 1h}
            rpo: 2h
            targets: [offsite]
            """;

    final PolicyParser parser = new PolicyParser(CLOCK);

    private Policy parse(String tiers) {
        return parser.parse(FILE, (HEAD + tiers).getBytes(UTF_8));
    }

    private List<String> problems(String tiers) {
        PolicyException e =
                assertThrows(PolicyException.class, () -> parser.parse(FILE, (HEAD + tiers).getBytes(UTF_8)));
        return e.problems().stream().map(PolicyProblem::toString).toList();
    }

    private static final String HOT_WARM_COLD =
            """
            tiers:
              hot: {location: local, keep: 7d}
              warm: {location: offsite, keep: 90d}
              cold: {location: offsite, storage-class: GLACIER, keep: 7y}
            """;

    @Test
    void tiersChainPerLocationInFileOrder() {
        Tiers tiers = parse(HOT_WARM_COLD).tiers();
        assertThat(tiers.all()).extracting(Tier::name).containsExactly("hot", "warm", "cold");
        Tier cold = tiers.all().get(2);
        assertThat(cold.storageClass()).hasValue("GLACIER");
        assertThat(cold.archive()).isTrue();
        assertThat(cold.keep()).isEqualTo(Duration.ofDays(7 * 365));
        assertThat(tiers.entersAt(cold)).isEqualTo(Duration.ofDays(90));
        assertThat(tiers.expiresAt("offsite")).hasValue(Duration.ofDays(90 + 7 * 365));
        assertThat(tiers.expiresAt("local")).hasValue(Duration.ofDays(7));
        assertThat(tiers.tierFor("offsite", Duration.ofDays(89)).map(Tier::name))
                .hasValue("warm");
        assertThat(tiers.tierFor("offsite", Duration.ofDays(90)).map(Tier::name))
                .hasValue("cold");
        assertThat(tiers.tierFor("offsite", Duration.ofDays(90 + 7 * 365))).isEmpty();
        assertThat(tiers.tierFor("local", Duration.ofDays(3)).map(Tier::name)).hasValue("hot");
        assertThat(tiers.transitions()).containsExactly(cold);
    }

    @Test
    void aSharedObjectStaysInTheWarmestTierAnyOfItsPointsNeeds() {
        Tiers tiers = parse(HOT_WARM_COLD).tiers();
        Duration old = Duration.ofDays(400);
        Duration young = Duration.ofDays(10);
        Duration expired = Duration.ofDays(90 + 7 * 365 + 1);
        assertThat(tiers.tierForShared("offsite", List.of(old)).map(Tier::name)).hasValue("cold");
        assertThat(tiers.tierForShared("offsite", List.of(old, young)).map(Tier::name))
                .hasValue("warm");
        assertThat(tiers.tierForShared("offsite", List.of(old, expired)).map(Tier::name))
                .hasValue("cold");
        assertThat(tiers.tierForShared("offsite", List.of(expired))).isEmpty();
    }

    @Test
    void aPolicyWithoutTiersHasNone() {
        assertThat(parse("").tiers()).isEqualTo(Tiers.NONE);
        assertThat(Tiers.NONE.tierFor("offsite", Duration.ZERO)).isEmpty();
    }

    @Test
    void badTierCombinationsAreReportedAtFileLineAndColumn() {
        assertThat(
                        problems(
                                """
                        tiers:
                          hot: {location: local, keep: 7d, storage-class: STANDARD_IA}
                          cold: {location: offsite, storage-class: GLACIER, keep: 1y}
                          far: {location: dr, keep: 30d}
                          Bad: {location: offsite, keep: 1d}
                          warm: {location: offsite, storage-class: GLACIER, keep: 0d}
                        """))
                .containsExactly(
                        "policies/db.yaml:7:51: tiers.hot.storage-class: local has no storage classes; leave out"
                                + " storage-class, or put this tier at a target",
                        "policies/db.yaml:8:44: tiers.cold.storage-class: 'cold' is the first tier at offsite, where"
                                + " new restore points are written, and GLACIER must be restored (hours) before any"
                                + " read; put a readable tier such as {location: offsite, keep: 30d} before it",
                        "policies/db.yaml:9:19: tiers.far.location: expected local or a target of this policy"
                                + " (local, offsite), got \"dr\"",
                        "policies/db.yaml:10:3: tiers.Bad: expected a tier name of lower-case letters, digits and"
                                + " '-', got \"Bad\"",
                        "policies/db.yaml:11:59: tiers.warm.keep: expected a positive duration such as 7d, 12h or 7y,"
                                + " got \"0d\"");
    }

    @Test
    void aTierThatMovesNothingOrASecondLocalTierIsRefused() {
        assertThat(
                        problems(
                                """
                        tiers:
                          hot: {location: local, keep: 7d}
                          hotter: {location: local, keep: 7d}
                          warm: {location: offsite, storage-class: STANDARD_IA, keep: 30d}
                          cool: {location: offsite, storage-class: STANDARD_IA, keep: 30d}
                          cold: {location: offsite, storage-class: glacier, keep: forever}
                        """))
                .containsExactly(
                        "policies/db.yaml:8:11: tiers.hotter: local already has tier 'hot' and a local repository"
                                + " has one storage class; put this tier at a target, or give 'hot' a longer keep",
                        "policies/db.yaml:10:9: tiers.cool: 'cool' follows 'warm' at offsite in the same storage"
                                + " class, so nothing would move; give it another storage-class, or merge the two"
                                + " tiers into one with the sum of their keeps",
                        "policies/db.yaml:11:44: tiers.cold.storage-class: expected an S3 storage class in upper case"
                                + " such as STANDARD_IA, GLACIER or DEEP_ARCHIVE, got \"glacier\"",
                        "policies/db.yaml:11:59: tiers.cold.keep: expected a positive duration such as 7d, 12h or 7y,"
                                + " got \"forever\"");
    }

    @Test
    void noTierAtAllIsRefused() {
        assertThat(problems("tiers: {}\n"))
                .containsExactly("policies/db.yaml:6:8: tiers: list at least one tier, or leave out tiers");
        assertThat(Optional.of(parse(HOT_WARM_COLD).tiers().locations()).orElseThrow())
                .containsExactly("local", "offsite");
    }

    @Test
    void planEstimatesTheBytesEachTierHoldsAndReceivesPerMonth() {
        Policy p = parse(HOT_WARM_COLD);
        // 100 MB/h of changed data, a 50 GB image
        PolicyPlan.Options options = new PolicyPlan.Options(
                CLOCK.instant(),
                1,
                Duration.ofDays(1),
                Duration.ofMinutes(1),
                java.util.OptionalDouble.of(100),
                java.util.OptionalDouble.of(100),
                java.util.OptionalDouble.of(50_000));
        List<PolicyPlan.TierOutlook> tiers = PolicyPlan.of(p, options).tiers();
        long month = 73_050_000_000L; // 100 MB/h x 730.5 h
        assertThat(tiers)
                .containsExactly(
                        new PolicyPlan.TierOutlook(
                                "local", "hot", Optional.empty(), 50_000_000_000L + 16_800_000_000L, month),
                        new PolicyPlan.TierOutlook(
                                "offsite", "warm", Optional.empty(), 50_000_000_000L + 216_000_000_000L, month),
                        new PolicyPlan.TierOutlook(
                                "offsite", "cold", Optional.of("GLACIER"), 100_000_000L * 24 * 365 * 7, month));
        PolicyPlan.Options noRate = PolicyPlan.Options.defaults(CLOCK.instant());
        assertThat(PolicyPlan.of(p, noRate).tiers()).isEmpty();
    }
}
