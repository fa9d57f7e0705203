-- ratelimit-headers.lua -- lighttpd mod_magnet: copy the limit state onto allowed responses.
--
-- After the ratelimit-filter authorizer answers 200, lighttpd turns its Variable-RATELIMIT_*
-- headers into request environment variables. This script, attached with
--   magnet.attract-response-start-to = ( "/etc/ratelimit-filter/ratelimit-headers.lua" )
-- copies them into the response headers. Refused requests (429) come from the filter with
-- their headers already and carry no such variables, so nothing is added there.
local r = lighty.r
local map = {
  RATELIMIT_POLICY = "RateLimit-Policy", RATELIMIT = "RateLimit",
  RATELIMIT_LIMIT = "X-RateLimit-Limit", RATELIMIT_REMAINING = "X-RateLimit-Remaining",
  RATELIMIT_RESET = "X-RateLimit-Reset",
}
for var, header in pairs(map) do
  local v = r.req_env[var]
  if v then r.resp_header[header] = v end
end
return 0
