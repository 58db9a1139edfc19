package io.tidemark.demo;

import static com.tngtech.archunit.lang.syntax.ArchRuleDefinition.noClasses;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.tngtech.archunit.core.domain.JavaClass;
import com.tngtech.archunit.core.domain.JavaClasses;
import com.tngtech.archunit.core.importer.ClassFileImporter;
import com.tngtech.archunit.core.importer.ImportOption;
import com.tngtech.archunit.lang.ArchRule;
import java.util.Arrays;
import java.util.List;
import java.util.Set;
import java.util.stream.Collectors;
import java.util.stream.Stream;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * The module layering, checked on the compiled main classes of every module (the demo module's
 * test class path sees them all). One module is one package root ({@code io.tidemark.core},
 * {@code io.tidemark.format}, …), so the rules are written on packages:
 *
 * <ul>
 *   <li>core depends on nothing of ours;
 *   <li>formats depends only on core;
 *   <li>targets does not depend on repository, workers, replicator, recovery, engine, cli or demo;
 *   <li>recovery does not depend on engine, cli or demo;
 *   <li>engine does not depend on cli or demo;
 *   <li>no main code outside demo (and the test kit itself) depends on the test kit.
 * </ul>
 *
 * Test classes, and the test jars some modules share, are left out: the rules are about what ships.
 */
class LayeringTest {

    private static final String CORE = "io.tidemark.core..";
    private static final String FORMATS = "io.tidemark.format..";
    private static final String TARGETS = "io.tidemark.targets..";
    private static final String REPOSITORY = "io.tidemark.repository..";
    private static final String POLICIES = "io.tidemark.policies..";
    private static final String KAFKA = "io.tidemark.kafka..";
    private static final String SCHEDULER = "io.tidemark.scheduler..";
    private static final String WORKERS = "io.tidemark.workers..";
    private static final String REPLICATOR = "io.tidemark.replicator..";
    private static final String TESTKIT = "io.tidemark.testkit..";
    private static final String RECOVERY = "io.tidemark.recovery..";
    private static final String ENGINE = "io.tidemark.engine..";
    private static final String CLI = "io.tidemark.cli..";
    private static final String DEMO = "io.tidemark.demo..";

    private static final List<String> MODULES = List.of(
            CORE,
            FORMATS,
            TARGETS,
            REPOSITORY,
            POLICIES,
            KAFKA,
            SCHEDULER,
            WORKERS,
            REPLICATOR,
            TESTKIT,
            RECOVERY,
            ENGINE,
            CLI,
            DEMO);

    private static JavaClasses main;

    @BeforeAll
    static void importMainClasses() {
        main = new ClassFileImporter()
                .withImportOption(ImportOption.Predefined.DO_NOT_INCLUDE_TESTS)
                .withImportOption(location -> !location.contains("-tests.jar"))
                .importPackages("io.tidemark");
    }

    /** Every module but {@code allowed} (and the module itself). */
    private static String[] allBut(String... allowed) {
        Set<String> keep = Set.of(allowed);
        return MODULES.stream().filter(m -> !keep.contains(m)).toArray(String[]::new);
    }

    static List<ArchRule> rules() {
        return List.of(
                noClasses()
                        .that()
                        .resideInAPackage(CORE)
                        .should()
                        .dependOnClassesThat()
                        .resideInAnyPackage(allBut(CORE))
                        .because("core is the domain model, ports and errors every module builds on"),
                noClasses()
                        .that()
                        .resideInAPackage(FORMATS)
                        .should()
                        .dependOnClassesThat()
                        .resideInAnyPackage(allBut(FORMATS, CORE))
                        .because("formats encode core's records and nothing else"),
                noClasses()
                        .that()
                        .resideInAPackage(TARGETS)
                        .should()
                        .dependOnClassesThat()
                        .resideInAnyPackage(REPOSITORY, WORKERS, REPLICATOR, RECOVERY, ENGINE, CLI, DEMO)
                        .because("an object target stores bytes; it knows nothing of what uses it"),
                noClasses()
                        .that()
                        .resideInAPackage(RECOVERY)
                        .should()
                        .dependOnClassesThat()
                        .resideInAnyPackage(ENGINE, CLI, DEMO)
                        .because("recovery use cases are called by the engine and the CLI, not the reverse"),
                noClasses()
                        .that()
                        .resideInAPackage(ENGINE)
                        .should()
                        .dependOnClassesThat()
                        .resideInAnyPackage(CLI, DEMO)
                        .because("the engine is wiring; the CLI and the demo sit on top of it"),
                noClasses()
                        .that()
                        .resideOutsideOfPackages(DEMO, TESTKIT)
                        .should()
                        .dependOnClassesThat()
                        .resideInAPackage(TESTKIT)
                        .because("only the demo ships the test kit (S3Proxy, JUnit, AssertJ) on its class path"));
    }

    @Test
    void everyModuleIsImportedSoNoRuleHoldsForWantOfClasses() {
        for (String module : MODULES) {
            String root = module.substring(0, module.length() - 2);
            assertThat(main.stream().filter(c -> c.getPackageName().startsWith(root)))
                    .as("main classes of %s", root)
                    .isNotEmpty();
        }
        assertThat(main.stream().map(JavaClass::getName)).noneMatch(n -> n.endsWith("Test") || n.endsWith("IT"));
    }

    @Test
    void mainCodeKeepsTheModuleLayering() {
        assertThat(rules()).hasSize(6);
        for (ArchRule rule : rules()) {
            rule.check(main);
        }
    }

    @Test
    void theRulesCatchAClassThatBreaksThem() {
        JavaClasses probe = new ClassFileImporter().importPackages("io.tidemark.recovery.layeringprobe");
        assertThat(probe.stream().map(JavaClass::getSimpleName)).contains("RecoveryThatReachesIntoTheEngine");
        List<String> failing = rules().stream()
                // the probe is one recovery class: the rules about other modules select nothing of it
                .filter(rule -> rule.allowEmptyShould(true).evaluate(probe).hasViolation())
                .map(ArchRule::getDescription)
                .collect(Collectors.toList());
        assertThat(failing)
                .hasSize(2)
                .anySatisfy(d -> assertThat(d).contains(ENGINE.replace("..", "")))
                .anySatisfy(d -> assertThat(d).contains("test kit"));
        assertThatThrownBy(() -> rules().get(3).check(probe))
                .isInstanceOf(AssertionError.class)
                .hasMessageContaining("RecoveryThatReachesIntoTheEngine")
                .hasMessageContaining("MetricsServer");
        assertThat(Stream.of(allBut(CORE))).hasSize(MODULES.size() - 1);
        assertThat(Arrays.asList(allBut(FORMATS, CORE))).doesNotContain(CORE, FORMATS);
    }
}
