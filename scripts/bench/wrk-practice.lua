-- POST a practice attempt to a rotating set of concept tickets.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local n = 0
request = function()
  n = n + 1
  local id = (n % tonumber(os.getenv("CONCEPTS") or "100")) + 1
  local score = (n % 10) / 10
  return wrk.format(nil, "/api/LearnTrac/concepts/" .. id .. "/practice", nil, '{"score": ' .. score .. '}')
end
