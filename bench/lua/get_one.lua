-- GET /agents/{id} for random ids. Arguments: the file of ids, one a line, and optionally the
-- collection path (/agents; /assistants for the other path family).
dofile("report.lua")
local ids, before_id, after_id

function init(args)
   seed_random()
   ids = read_lines(args[1])
   -- Each request is put together when sent: formatting one per id up front took wrk seconds
   -- of init for 100,000 ids.
   before_id, after_id = wrk.format("GET", (args[2] or "/agents") .. "/{id}"):match("^(.-){id}(.*)$")
end

function request()
   return before_id .. ids[math.random(#ids)] .. after_id
end
