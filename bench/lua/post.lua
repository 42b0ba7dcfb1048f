-- POST /agents with random full agents. Argument: the file of JSON bodies, one a line.
dofile("report.lua")
local pool = {}

function init(args)
   seed_random()
   local headers = {["Content-Type"] = "application/json"}
   for _, body in ipairs(read_lines(args[1])) do
      table.insert(pool, wrk.format("POST", "/agents", headers, body))
   end
end

function request()
   return pool[math.random(#pool)]
end
