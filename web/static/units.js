// Words for figures, as the server writes them (parametric.units), for the pages that update themselves.

// How long, for people: "1 h 02 min", "12 min 30 s" ("13 min" unless precise), "40 s", exactly as
// parametric.units.format_duration says it: whole seconds rounded half to even, as Python's round(), and a
// figure shown without its seconds (an hour or more, or not precise) rounded to the nearest minute.
export function duration(seconds, { precise = true } = {}) {
  const nearest = Math.round(seconds);
  let whole = Math.abs(seconds % 1) === 0.5 && nearest % 2 !== 0 ? nearest - 1 : nearest;
  if (whole >= 3600 || (whole >= 60 && !precise)) whole = Math.floor((whole + 30) / 60) * 60;
  const hours = Math.floor(whole / 3600);
  const minutes = Math.floor((whole % 3600) / 60);
  const secs = whole % 60;
  const two = (n) => String(n).padStart(2, '0');
  if (hours) return `${hours} h ${two(minutes)} min`;
  if (minutes) return precise ? `${minutes} min ${two(secs)} s` : `${minutes} min`;
  return `${secs} s`;
}
