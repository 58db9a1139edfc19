#!/usr/bin/env python3
# Writes tidemark_template.yaml (Zabbix 6.0 export format) beside this file; UUIDs are derived from names,
# so the output is stable. Edit here, run it, then prove-import.sh against a running engine.
import uuid, yaml
T='Tidemark by HTTP'
def u(*k): return uuid.UUID(uuid.uuid5(uuid.NAMESPACE_URL,'tidemark-zabbix/'+'/'.join(k)).hex, version=4).hex
MASTER={'key':'tidemark.get_metrics'}
def pp(pattern, mode='value', param='', default=None):
    s={'type':'PROMETHEUS_PATTERN','parameters':[pattern,mode,param]}
    if default is not None:
        s['error_handler']='CUSTOM_VALUE'; s['error_handler_params']=default
    return [s]
def dep(name,key,pattern,units='',value_type='FLOAT',desc='',mode='value',param='',default=None,triggers=None,extra_pp=None,tags=None):
    it={'uuid':u('item',key),'name':name,'type':'DEPENDENT','key':key,'delay':'0','history':'7d','value_type':value_type}
    if units: it['units']=units
    if desc: it['description']=desc
    steps=pp(pattern,mode,param,default)+(extra_pp or [])
    it['preprocessing']=steps
    it['master_item']=MASTER
    if tags: it['tags']=tags
    if triggers: it['triggers']=triggers
    return it
def trig(key_id,name,expr,prio,desc,manual=False):
    t={'uuid':u('trigger',key_id),'expression':expr,'name':name,'priority':prio,'description':desc}
    return t
items=[
 {'uuid':u('item','tidemark.get_metrics'),'name':'Tidemark: get metrics','type':'HTTP_AGENT','key':'tidemark.get_metrics',
  'delay':'{$TIDEMARK.INTERVAL}','history':'0','trends':'0','value_type':'TEXT','url':'{$TIDEMARK.URL}/metrics','timeout':'5s',
  'description':'The whole /metrics answer of the engine; every other item is taken from it (Prometheus preprocessing).',
  'tags':[{'tag':'component','value':'raw'}]},
 dep('Tidemark: build','tidemark.build_info','tidemark_build_info','',value_type='CHAR',mode='label',param='version',
     desc='The engine version (tidemark_build_info).',
     triggers=[trig('down','Tidemark: engine {HOST.NAME} does not answer scrapes',
        'nodata(/%s/tidemark.build_info,{$TIDEMARK.NODATA})=1'%T,'HIGH',
        'Alert TidemarkEngineDown: no /metrics answer for {$TIDEMARK.NODATA}. Check the service and its log.')]),
 dep('Tidemark: jobs failed','tidemark.jobs.failed','tidemark_jobs_failed_total{stage!="replicate"}',mode='function',param='sum',default='0',
     desc='Backup jobs that failed since the engine started, over all VMs.'),
 dep('Tidemark: jobs succeeded','tidemark.jobs.succeeded','tidemark_jobs_succeeded_total',mode='function',param='sum',default='0',
     desc='Backup jobs that committed a restore point since the engine started.'),
 dep('Tidemark: bytes read per second','tidemark.backup.read.rate','tidemark_backup_read_bytes_total',units='Bps',mode='function',param='sum',default='0',
     extra_pp=[{'type':'CHANGE_PER_SECOND','parameters':['']}]),
 dep('Tidemark: bytes stored per second','tidemark.backup.stored.rate','tidemark_backup_stored_bytes_total',units='Bps',mode='function',param='sum',default='0',
     extra_pp=[{'type':'CHANGE_PER_SECOND','parameters':['']}]),
 dep('Tidemark: bytes shipped per second','tidemark.replication.shipped.rate','tidemark_replication_shipped_bytes_total',units='Bps',mode='function',param='sum',default='0',
     extra_pp=[{'type':'CHANGE_PER_SECOND','parameters':['']}]),
 dep('Tidemark: scheduler firing lag, sum per second','tidemark.firing_lag.sum.rate','tidemark_scheduler_firing_lag_seconds_sum',default='0',
     extra_pp=[{'type':'CHANGE_PER_SECOND','parameters':['']}]),
 dep('Tidemark: scheduler firings per second','tidemark.firing_lag.count.rate','tidemark_scheduler_firing_lag_seconds_count',default='0',
     extra_pp=[{'type':'CHANGE_PER_SECOND','parameters':['']}]),
 dep('Tidemark: JVM heap used','tidemark.jvm.heap','jvm_memory_used_bytes{area="heap"}',units='B',mode='function',param='sum'),
 dep('Tidemark: JVM threads','tidemark.jvm.threads','jvm_threads_current'),
]
def lld(name,key,metric,macros,prototypes,filt=None,desc=''):
    r={'uuid':u('lld',key),'name':name,'type':'DEPENDENT','key':key,'delay':'0','lifetime':'{$TIDEMARK.LLD.LIFETIME}','description':desc}
    if filt: r['filter']=filt
    for it in prototypes:
        if 'triggers' in it:
            it['trigger_prototypes']=it.pop('triggers')
    r['item_prototypes']=prototypes
    r['master_item']=MASTER
    r['preprocessing']=[{'type':'PROMETHEUS_TO_JSON','parameters':[metric]}]
    r['lld_macro_paths']=[{'lld_macro':m,'path':p} for m,p in macros]
    return r
vl='{#VM}",location="{#LOCATION}'
rules=[
 lld('VM and location discovery','tidemark.rpo.discovery','tidemark_rpo_violated',[('{#VM}','$.labels.vm'),('{#LOCATION}','$.labels.location'),('{#POLICY}','$.labels.policy')],[
   dep('VM {#VM} at {#LOCATION}: RPO','tidemark.rpo.seconds[{#VM},{#LOCATION}]','tidemark_rpo_seconds{vm="%s"}'%vl,units='s'),
   dep('VM {#VM} at {#LOCATION}: RPO limit','tidemark.rpo.limit[{#VM},{#LOCATION}]','tidemark_rpo_limit_seconds{vm="%s"}'%vl,units='s'),
   dep('VM {#VM} at {#LOCATION}: RPO violated','tidemark.rpo.violated[{#VM},{#LOCATION}]','tidemark_rpo_violated{vm="%s"}'%vl,value_type='UNSIGNED',
     triggers=[trig('rpo','Tidemark: RPO of {#VM} at {#LOCATION} violated',
       'min(/%s/tidemark.rpo.violated[{#VM},{#LOCATION}],{$TIDEMARK.RPO.FOR})=1'%T,'HIGH',
       'Alert TidemarkRpoViolated: the newest restore point is older than policy {#POLICY} allows.')]),
 ], desc='One entry per VM and location (local and each target), from tidemark_rpo_violated.'),
 lld('VM discovery','tidemark.vm.discovery','tidemark_rpo_violated{location="local"}',[('{#VM}','$.labels.vm')],[
   dep('VM {#VM}: backup failures','tidemark.vm.failed[{#VM}]','tidemark_jobs_failed_total{vm="{#VM}",stage!="replicate"}',mode='function',param='sum',default='0',
     desc='Failed backup jobs of the VM since the engine started.'),
 ], desc='One entry per VM of this host.'),
 lld('Drill discovery','tidemark.drill.discovery','tidemark_drill_passed',[('{#VM}','$.labels.vm'),('{#LOCATION}','$.labels.location')],[
   dep('Drill of {#VM} at {#LOCATION}: passed','tidemark.drill.passed[{#VM},{#LOCATION}]','tidemark_drill_passed{vm="%s"}'%vl,value_type='UNSIGNED',
     triggers=[trig('drillfailed','Tidemark: the newest drill of {#VM} at {#LOCATION} failed',
       'last(/%s/tidemark.drill.passed[{#VM},{#LOCATION}])=0'%T,'HIGH','Alert TidemarkDrillFailed: run tidemark drill by hand and read its report.')]),
   dep('Drill of {#VM} at {#LOCATION}: finished at','tidemark.drill.timestamp[{#VM},{#LOCATION}]','tidemark_drill_timestamp_seconds{vm="%s"}'%vl,units='unixtime',value_type='UNSIGNED',
     triggers=[trig('drilloverdue','Tidemark: no drill of {#VM} at {#LOCATION} for over {$TIDEMARK.DRILL.MAX_AGE}',
       'now()-last(/%s/tidemark.drill.timestamp[{#VM},{#LOCATION}])>{$TIDEMARK.DRILL.MAX_AGE}'%T,'WARNING','Alert TidemarkDrillOverdue: schedule tidemark drill at least weekly for every VM and location.')]),
   dep('Drill of {#VM} at {#LOCATION}: RTO','tidemark.drill.rto[{#VM},{#LOCATION}]','tidemark_rto_seconds{vm="%s"}'%vl,units='s',
     triggers=[trig('rto','Tidemark: the newest drill of {#VM} at {#LOCATION} took longer than its RTO',
       'last(/{T}/tidemark.drill.rto[{{#VM}},{{#LOCATION}}])>last(/{T}/tidemark.drill.rto.limit[{{#VM}},{{#LOCATION}}])'.format(T=T),
       'WARNING','Alert TidemarkRtoExceeded: a restore from here takes longer than the policy promises.')]),
   dep('Drill of {#VM} at {#LOCATION}: RTO limit','tidemark.drill.rto.limit[{#VM},{#LOCATION}]','tidemark_rto_limit_seconds{vm="%s"}'%vl,units='s'),
 ], desc='One entry per VM and location with a drill result.'),
 lld('Target discovery','tidemark.target.discovery','tidemark_target_up',[('{#TARGET}','$.labels.target')],[
   dep('Target {#TARGET}: reachable','tidemark.target.up[{#TARGET}]','tidemark_target_up{target="{#TARGET}"}',value_type='UNSIGNED',
     triggers=[trig('targetdown','Tidemark: replication target {#TARGET} does not answer',
       'max(/%s/tidemark.target.up[{#TARGET}],{$TIDEMARK.TARGET.DOWN.FOR})=0'%T,'HIGH','Alert TidemarkTargetUnreachable: /readyz says why.')]),
   dep('Target {#TARGET}: missing restore points','tidemark.target.missing[{#TARGET}]','tidemark_replication_missing_points{target="{#TARGET}"}',value_type='UNSIGNED',
     triggers=[trig('backlog','Tidemark: target {#TARGET} falls behind',
       'min(/{T}/tidemark.target.missing[{{#TARGET}}],{{$TIDEMARK.BACKLOG.FOR}})>0 and last(/{T}/tidemark.target.missing[{{#TARGET}}])>last(/{T}/tidemark.target.missing[{{#TARGET}}],#1:now-1h)'.format(T=T),
       'WARNING','Alert TidemarkReplicationBacklogGrowing: check the target, its errors and its bandwidth limit.')]),
   dep('Target {#TARGET}: backlog bytes','tidemark.target.backlog.bytes[{#TARGET}]','tidemark_replication_backlog_bytes{target="{#TARGET}"}',units='B',default='0'),
   dep('Target {#TARGET}: errors','tidemark.target.errors[{#TARGET}]','tidemark_target_errors_total{target="{#TARGET}"}',mode='function',param='sum',default='0'),
 ], desc='One entry per configured replication target.'),
 lld('Budget discovery','tidemark.budget.discovery','tidemark_budget_bytes',[('{#VM}','$.labels.vm'),('{#LOCATION}','$.labels.location'),('{#POLICY}','$.labels.policy')],[
   dep('Budget of {#VM} at {#LOCATION}','tidemark.budget.bytes[{#VM},{#LOCATION}]','tidemark_budget_bytes{vm="%s"}'%vl,units='B',value_type='UNSIGNED',
     desc='The capacity budget of the VM at the location (budget: of policy {#POLICY}).'),
   dep('Budget of {#VM} at {#LOCATION}: used','tidemark.budget.used[{#VM},{#LOCATION}]','tidemark_budget_used_bytes{vm="%s"}'%vl,units='B',value_type='UNSIGNED',
     desc='What the VM\'s restore points at the location occupy once prune has run (measured every 10 minutes).',
     triggers=[trig('budget','Tidemark: {#VM} at {#LOCATION} is over its capacity budget',
       'min(/{T}/tidemark.budget.used[{{#VM}},{{#LOCATION}}],{{$TIDEMARK.BUDGET.FOR}})>last(/{T}/tidemark.budget.bytes[{{#VM}},{{#LOCATION}}])'.format(T=T),
       'WARNING','Alert TidemarkBudgetExceeded: the points prune must keep do not fit the budget of policy {#POLICY}; see docs/runbooks/budget-exceeded.md.')]),
 ], desc='One entry per VM and location with a capacity budget (budget: in its policy), from tidemark_budget_bytes.'),
 lld('Component discovery','tidemark.component.discovery','tidemark_component_ready',[('{#COMPONENT}','$.labels.component')],[
   dep('Component {#COMPONENT}: ready','tidemark.component.ready[{#COMPONENT}]','tidemark_component_ready{component="{#COMPONENT}"}',value_type='UNSIGNED',
     triggers=[trig('roledown','Tidemark: role {#COMPONENT} is not ready',
       'max(/%s/tidemark.component.ready[{#COMPONENT}],{$TIDEMARK.ROLE.DOWN.FOR})=0'%T,'HIGH','Alert TidemarkRoleDown: /readyz names the cause.')]),
 ], filt={'evaltype':'AND','conditions':[{'macro':'{#COMPONENT}','value':'^target:','operator':'NOT_MATCHES_REGEX','formulaid':'A'}]},
 desc='The engine roles /readyz reports (targets have their own discovery).'),
]
macros=[
 ('{$TIDEMARK.URL}','http://127.0.0.1:9464','The engine metrics address (metrics: in the engine config), without /metrics.'),
 ('{$TIDEMARK.INTERVAL}','1m','How often /metrics is scraped.'),
 ('{$TIDEMARK.NODATA}','5m','No scrape answer for this long: engine down.'),
 ('{$TIDEMARK.RPO.FOR}','5m','An RPO violation lasting this long raises the trigger.'),
 ('{$TIDEMARK.TARGET.DOWN.FOR}','10m','A target unreachable this long raises the trigger.'),
 ('{$TIDEMARK.BACKLOG.FOR}','30m','A backlog present this long and larger than an hour ago raises the trigger.'),
 ('{$TIDEMARK.ROLE.DOWN.FOR}','10m','A role not ready this long raises the trigger.'),
 ('{$TIDEMARK.DRILL.MAX_AGE}','8d','A drill older than this is overdue.'),
 ('{$TIDEMARK.BUDGET.FOR}','15m','A VM over its capacity budget this long raises the trigger.'),
 ('{$TIDEMARK.FAILURES.MAX}','3','Failures of one VM within an hour that raise the trigger.'),
 ('{$TIDEMARK.FIRING_LAG.MAX}','60','Mean scheduler firing lag (seconds) over 15 minutes that raises the trigger.'),
 ('{$TIDEMARK.LLD.LIFETIME}','7d','How long a VM, budget, target or role that disappeared is kept.'),
]
# the repeated-failure trigger: a prototype trigger on the VM's failure count
rules[1]['item_prototypes'][0]['trigger_prototypes']=[trig('failing','Tidemark: backups of {#VM} fail repeatedly',
  'last(/{T}/tidemark.vm.failed[{{#VM}}])-last(/{T}/tidemark.vm.failed[{{#VM}}],#1:now-1h)>={{$TIDEMARK.FAILURES.MAX}}'.format(T=T),
  'WARNING','Alert TidemarkVmFailingRepeatedly: see the reason label of tidemark_jobs_failed_total and the engine log.')]
export={'zabbix_export':{
 'version':'6.0','date':'2026-12-06T00:00:00Z',
 'groups':[{'uuid':u('group'),'name':'Templates/Applications'}],
 'templates':[{'uuid':u('template'),'template':T,'name':T,
   'description':'Tidemark engine: scrapes /metrics (Prometheus preprocessing), discovers VMs, locations, drills, capacity budgets, targets and roles, with triggers matching deploy/monitoring/prometheus/tidemark-alerts.yml. docs/monitoring.md explains each.',
   'groups':[{'name':'Templates/Applications'}],
   'items':items,'discovery_rules':rules,
   'tags':[{'tag':'class','value':'software'},{'tag':'target','value':'tidemark'}],
   'macros':[{'macro':m,'value':v,'description':d} for m,v,d in macros]}],
 'triggers':[{'uuid':u('trigger','firinglag'),
   'expression':'avg(/{T}/tidemark.firing_lag.sum.rate,15m)/avg(/{T}/tidemark.firing_lag.count.rate,15m)>{{$TIDEMARK.FIRING_LAG.MAX}}'.format(T=T),
   'name':'Tidemark: the scheduler on {HOST.NAME} fires jobs late','priority':'WARNING',
   'description':'Alert TidemarkSchedulerFiringLate: the host is overloaded or the scheduler threads are blocked.'}]}}
class D(yaml.SafeDumper):
    def ignore_aliases(self, data): return True
D.add_representer(str, lambda d,s: d.represent_scalar('tag:yaml.org,2002:str', s, style="'" if (s[:1] in '{[*&!|>%@`\'"#' or ':' in s or s in ('0','1','3','60') or s.isdigit()) else None))
hdr='# Zabbix 6.0 LTS template for Tidemark: import in Data collection > Templates > Import (or configuration.import).\n# docs/monitoring.md explains the items, discovery rules and triggers; deploy/monitoring/zabbix/prove-import.sh\n# proves it against a real Zabbix 6.0 server.\n'
open(__import__('os').path.join(__import__('os').path.dirname(__import__('os').path.abspath(__file__)),'tidemark_template.yaml'),'w').write(hdr+yaml.dump(export,Dumper=D,sort_keys=False,allow_unicode=True,width=200))
