-- POST the JSON body given as the first script argument on every request.
-- Usage: wrk -s post_json.lua URL -- '{"name":"Widget"}'
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"

function init(args)
  wrk.body = args[1] or "{}"
end
