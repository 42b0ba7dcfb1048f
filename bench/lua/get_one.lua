-- GET /agents/{id} for random ids. Argument: the file of ids, one a line.
dofile("report.lua")
local pool = {}

function init(args)
   seed_random()
   for _, id in ipairs(read_lines(args[1])) do
      table.insert(pool, wrk.format("GET", "/agents/" .. id))
   end
end

function request()
   return pool[math.random(#pool)]
end
