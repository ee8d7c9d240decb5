/**
 * The seconds between two runs of a regular cron schedule. The freshness alert fires when the
 * newest successful backup is older than twice this, so only schedules with one fixed interval are
 * accepted; anything else is refused at synth with the forms that work.
 * Returns a problem (a string) for schedules it cannot read.
 */
export function backupIntervalSeconds(schedule: string): number | string {
  const fields = schedule.trim().split(/\s+/);
  const minute = /^([0-5]?\d)$/;
  const every = (field: string, unit: number) => {
    const n = /^\*\/(\d+)$/.exec(field)?.[1];
    return n !== undefined && Number(n) > 0 && unit % Number(n) === 0 ? Number(n) : undefined;
  };
  const [m = '', h = '', dom = '', month = '', dow = ''] = fields;
  const anyDay = fields.length === 5 && dom === '*' && month === '*' && dow === '*';
  if (schedule === '@hourly') return 3600;
  if (schedule === '@daily' || schedule === '@midnight') return 86_400;
  if (anyDay && h === '*' && minute.test(m)) return 3600;
  if (anyDay && h === '*' && every(m, 60) !== undefined) return every(m, 60)! * 60;
  if (anyDay && minute.test(m) && every(h, 24) !== undefined) return every(h, 24)! * 3600;
  if (anyDay && minute.test(m) && /^(1?\d|2[0-3])$/.test(h)) return 86_400;
  return (
    `backup schedule "${schedule}" has no single interval the freshness alert can use: ` +
    'use "M * * * *" (hourly), "*/N * * * *", "M */N * * *", "M H * * *" (daily), @hourly or @daily'
  );
}
