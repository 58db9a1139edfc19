package io.tidemark.app;

import io.tidemark.policies.PolicyException;
import io.tidemark.policies.PolicyParser;
import io.tidemark.policies.PolicySet;
import java.nio.file.Path;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Parameters;

@Command(
        name = "policy",
        description = "Check policy files before they are merged.",
        subcommands = {PolicyCommand.Lint.class})
final class PolicyCommand {

    @Command(
            name = "lint",
            description = {
                "Parse every *.yaml / *.yml policy in DIR and report every problem as FILE:LINE:COLUMN: KEY: what",
                "is expected. Exit 0 when all are valid, 1 otherwise: fit for a pull-request check."
            })
    static final class Lint implements Callable<Integer> {
        @Parameters(index = "0", paramLabel = "DIR", description = "the policy directory")
        Path dir;

        @Override
        public Integer call() {
            try {
                PolicySet set = new PolicyParser().loadDirectory(dir);
                System.out.println(set.policies().size() + " policies OK in " + dir);
                return 0;
            } catch (PolicyException e) {
                e.problems().forEach(p -> System.err.println(p));
                System.err.println(e.problems().size() + " problem(s); no policy was changed");
                return Main.EXIT_INVALID;
            }
        }
    }
}
