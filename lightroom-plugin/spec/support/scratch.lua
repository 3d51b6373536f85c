-- Scratch folders and files for specs, removed by Scratch.cleanAll().
local lfs = require 'lfs'

local Scratch = { dirs = {} }

local base = os.getenv('RB_SPEC_TMP') or os.getenv('TMPDIR') or '/tmp'

function Scratch.dir(tag)
	local path
	repeat
		path = string.format('%s/rb-spec-%s-%d-%d', base, tag or 'x', os.time(), math.random(1, 1e9))
	until not lfs.attributes(path)
	assert(lfs.mkdir(path))
	Scratch.dirs[#Scratch.dirs + 1] = path
	return path
end

function Scratch.write(path, data)
	local f = assert(io.open(path, 'wb'))
	f:write(data)
	f:close()
	return path
end

function Scratch.read(path)
	local f = io.open(path, 'rb')
	if not f then return nil end
	local data = f:read('*a')
	f:close()
	return data
end

-- Sorted names in a folder, hidden ones included (temp files are hidden).
function Scratch.list(dir)
	local names = {}
	for name in lfs.dir(dir) do
		if name ~= '.' and name ~= '..' then names[#names + 1] = name end
	end
	table.sort(names)
	return names
end

local function remove(path)
	if lfs.attributes(path, 'mode') == 'directory' then
		for name in lfs.dir(path) do
			if name ~= '.' and name ~= '..' then remove(path .. '/' .. name) end
		end
		lfs.rmdir(path)
	else
		os.remove(path)
	end
end

function Scratch.cleanAll()
	for _, dir in ipairs(Scratch.dirs) do remove(dir) end
	Scratch.dirs = {}
end

return Scratch
