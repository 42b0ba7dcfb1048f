-- PATCH /agents/{id}: a random merge patch on a random agent.
-- Arguments: the file of ids, the file of JSON patches.
dofile("report.lua")
local ids, patches
-- The service reads a merge patch sent as application/json too; json-server reads no other type.
local headers = {["Content-Type"] = "application/json"}

function init(args)
   seed_random()
   ids = read_lines(args[1])
   patches = read_lines(args[2])
end

function request()
   return wrk.format("PATCH", "/agents/" .. ids[math.random(#ids)], headers,
                     patches[math.random(#patches)])
end
