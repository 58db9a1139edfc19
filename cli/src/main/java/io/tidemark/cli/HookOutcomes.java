package io.tidemark.cli;

import com.fasterxml.jackson.databind.JsonNode;
import java.util.Locale;

/** The table of per-VM outcomes a hook answers with (pre-deploy, backup now): when each level was reached. */
final class HookOutcomes {

    private HookOutcomes() {}

    /** Prints the answer's {@code vms}, with each VM's job id when {@code withJob}. */
    static void print(JsonNode answer, boolean withJob) {
        String job = withJob ? " %-32s" : "%s";
        String row = "%-20s %-12s" + job + " %-28s %10s %10s %10s%n";
        System.out.printf(
                row, "VM", "HOST", withJob ? "JOB" : "", "RESTORE POINT", "CAPTURED", "COMMITTED", "REPLICATED");
        for (JsonNode vm : answer.path("vms")) {
            System.out.printf(
                    row,
                    vm.path("vm").asText(),
                    vm.path("host").asText(),
                    withJob ? vm.path("jobId").asText() : "",
                    vm.path("restorePointId").asText("-"),
                    after(vm, "capturedAfterMs"),
                    after(vm, "committedAfterMs"),
                    vm.path("targets").isEmpty() ? "n/a" : after(vm, "replicatedAfterMs"));
        }
    }

    private static String after(JsonNode vm, String field) {
        return vm.has(field)
                ? String.format(Locale.ROOT, "%.1f s", vm.path(field).asLong() / 1000.0)
                : "-";
    }
}
