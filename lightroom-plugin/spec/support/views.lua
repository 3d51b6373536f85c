-- Walks a view tree built through the stand-in's LrView factory.
local Views = {}

function Views.find(view, predicate, found)
	found = found or {}
	if type(view) ~= 'table' then return found end
	if predicate(view) then found[#found + 1] = view end
	for _, child in ipairs(view) do Views.find(child, predicate, found) end
	return found
end

function Views.ofKind(view, kind)
	return Views.find(view, function(v) return v.kind == kind end)
end

function Views.boundKeys(view)
	local keys = {}
	Views.find(view, function(v)
		if type(v.value) == 'table' and v.value.bind then keys[v.value.bind] = true end
		return false
	end)
	return keys
end

return Views
