-- GET concepts, rotating over the seeded tickets.
local n = 0
request = function()
  n = n + 1
  local id = (n % tonumber(os.getenv("CONCEPTS") or "100")) + 1
  return wrk.format("GET", "/api/LearnTrac/concepts/" .. id)
end
