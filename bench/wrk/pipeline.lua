-- HTTP/1.1 pipelining, as the TechEmpower plaintext test runs it:
-- every write sends `depth` copies of the request back to back on one connection
-- and wrk counts each response. Usage: wrk -s pipeline.lua URL -- 16
local depth = 16
local batch = nil

function init(args)
  depth = tonumber(args[1]) or depth
  batch = string.rep(wrk.format(), depth)
end

function request()
  return batch
end
