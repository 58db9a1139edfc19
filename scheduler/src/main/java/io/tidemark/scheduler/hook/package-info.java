/**
 * The pre-deploy hook: "snapshot before you deploy, block the deploy if it fails".
 *
 * <p>A CI/CD pipeline names the application it is about to deploy, the commit and its own run.
 * {@link io.tidemark.scheduler.hook.HookService} is the one path of all three entry points — the
 * authenticated HTTP endpoint ({@link io.tidemark.scheduler.hook.HookServer}), the {@code tidemark
 * hook pre-deploy} command (a client of that endpoint) and the {@code pre-deploy-requested} event on
 * {@code tidemark.triggers} ({@link io.tidemark.scheduler.hook.PreDeployTriggerHandler}). It
 * publishes one snapshot job per VM of the policies that list the application, with a job id
 * derived from (app, commit, pipeline, VM) so that the same hook twice yields one set of restore
 * points, and can wait until every job is captured, committed or replicated ({@link
 * io.tidemark.scheduler.hook.WaitLevel}).
 *
 * <p>The HTTP wire form (request body, response body, signature headers) is defined by {@link
 * io.tidemark.scheduler.hook.HookJson} and {@link io.tidemark.scheduler.hook.HookSignature}, which
 * the command-line client shares.
 */
package io.tidemark.scheduler.hook;
