package io.tidemark.engine;

import static org.assertj.core.api.Assertions.assertThat;

import io.tidemark.replicator.Pruner;
import java.util.List;
import org.junit.jupiter.api.Test;

class BudgetMetricsTest {

    @Test
    void eachBudgetAndItsUseIsAGaugePerVmAndLocation() {
        String text = MetricsServer.renderBudgets(List.of(
                new Pruner.BudgetUse("local", "db-1", "db", 50L << 30, 12L << 30),
                new Pruner.BudgetUse("offsite", "db-1", "db", 200L << 30, 30L << 30)));
        assertThat(text)
                .contains("# TYPE tidemark_budget_bytes gauge\n")
                .contains("tidemark_budget_bytes{vm=\"db-1\",location=\"local\",policy=\"db\"} 53687091200\n")
                .contains("tidemark_budget_used_bytes{vm=\"db-1\",location=\"offsite\",policy=\"db\"} 32212254720\n");
        // no budget anywhere: no family at all
        assertThat(MetricsServer.renderBudgets(List.of())).isEmpty();
    }
}
