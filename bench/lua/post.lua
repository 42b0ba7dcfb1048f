-- POST /agents with random full agents. Arguments: the file of JSON bodies, one a line, and
-- optionally the collection path (/agents; /assistants for the other path family).
dofile("report.lua")
local pool = {}

function init(args)
   seed_random()
   local headers = {["Content-Type"] = "application/json"}
   for _, body in ipairs(read_lines(args[1])) do
      table.insert(pool, wrk.format("POST", args[2] or "/agents", headers, body))
   end
end

function request()
   return pool[math.random(#pool)]
end
